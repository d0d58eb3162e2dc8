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

use std::fmt;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{unbounded, Sender};

use crate::common::avatar::{self, Picture};
use crate::common::connection::{FrameReader, ReadError};
use crate::common::frame::DEFAULT_MAX_BODY;
use crate::common::packet::{
    ClientHello, ClientPacket, ErrorCode, Info, Profile, ServerPacket, PROTOCOL_VERSION,
};

/// Where to connect and who to be.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub color: String,
    pub image_name: String,
    /// Our own avatar as a 48x48 PNG, sent only to a HubChat server;
    /// everyone else sees `image_name`.
    pub picture: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// Which kind of server the session joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    HubChat { version: u32, max_packet: usize },
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
    /// A client's own avatar picture, decoded; a picture that cannot be
    /// decoded is dropped, and that client keeps its built-in avatar.
    Picture { id: String, picture: Picture },
    /// The server refused something but the session goes on.
    Refused { code: ErrorCode, message: String },
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
    /// No answer in time.
    TimedOut { addr: String },
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
                "Nothing answers at {addr}. Is the server running, and is the port right?"
            ),
            ConnectError::TimedOut { addr } => write!(
                f,
                "{addr} did not answer in time. Check the address, or a firewall between you."
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
    outgoing: Sender<Vec<u8>>,
    stream: TcpStream,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl Session {
    /// Connects and joins; on success, events go to `sink` from the
    /// session's reader thread, starting with the first roster.
    pub fn connect(
        config: &SessionConfig,
        sink: impl Fn(SessionEvent) + Send + 'static,
    ) -> Result<Session, ConnectError> {
        let stream = open(config)?;
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
        let mut reader =
            FrameReader::new(stream.try_clone().map_err(failed)?, DEFAULT_MAX_BODY * 16);

        expect_info_request(&mut reader)?;
        let info = Info {
            name: config.name.trim().to_string(),
            color: config.color.clone(),
            image_name: config.image_name.clone(),
            hubchat: Some(ClientHello {
                version: PROTOCOL_VERSION,
            }),
        };
        (&stream)
            .write_all(&ClientPacket::Info(info.clone()).encode())
            .map_err(failed)?;
        let Welcomed { id, kind, roster } = read_welcome(&mut reader, &info.name)?;
        stream.set_read_timeout(None).map_err(failed)?;
        sink(SessionEvent::Listed(roster));

        let (outgoing, queue) = unbounded::<Vec<u8>>();
        let mut out = stream.try_clone().map_err(failed)?;
        let writer = thread::spawn(move || {
            for frame in queue {
                if out.write_all(&frame).is_err() {
                    let _ = out.shutdown(Shutdown::Both);
                    return;
                }
            }
        });
        if let (ServerKind::HubChat { .. }, Some(png)) = (kind, &config.picture) {
            let _ = outgoing.send(ClientPacket::Picture { png: png.clone() }.encode());
        }
        let reader = thread::spawn(move || read_loop(reader, &sink));
        Ok(Session {
            id,
            kind,
            outgoing,
            stream,
            reader: Some(reader),
            writer: Some(writer),
        })
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
        let _ = self.outgoing.send(frame);
    }

    /// Says DISCONNECT and waits for the connection to close.
    pub fn disconnect(mut self) {
        self.close();
    }

    fn close(&mut self) {
        let _ = self.outgoing.send(ClientPacket::Disconnect.encode());
        // Closing the queue ends the writer once it has sent everything.
        let (dummy, _) = unbounded();
        drop(std::mem::replace(&mut self.outgoing, dummy));
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        // The server closes after DISCONNECT; do not wait on one that does not.
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = self.stream.shutdown(Shutdown::Write);
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

/// Resolves and connects, trying each address in turn.
fn open(config: &SessionConfig) -> Result<TcpStream, ConnectError> {
    let host = config
        .host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let shown = format!("{host}, port {}", config.port);
    let addrs: Vec<SocketAddr> = (host, config.port)
        .to_socket_addrs()
        .map_err(|_| ConnectError::UnknownHost {
            host: host.to_string(),
        })?
        .collect();
    let mut last = ConnectError::UnknownHost {
        host: host.to_string(),
    };
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, config.timeout) {
            Ok(s) => return Ok(s),
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

fn next(reader: &mut FrameReader<TcpStream>) -> Result<ServerPacket, ConnectError> {
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
            Err(ConnectError::Failed {
                message: "The server did not answer in time. Is it a HubChat server?".into(),
            })
        }
        Err(e) => Err(ConnectError::Failed {
            message: format!("The connection failed: {e}."),
        }),
    }
}

fn expect_info_request(reader: &mut FrameReader<TcpStream>) -> Result<(), ConnectError> {
    loop {
        match next(reader)? {
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
fn read_welcome(reader: &mut FrameReader<TcpStream>, name: &str) -> Result<Welcomed, ConnectError> {
    let mut welcome = None;
    loop {
        match next(reader)? {
            ServerPacket::Welcome(w) => welcome = Some(w),
            ServerPacket::AllClients(roster) => {
                let entries = roster.0;
                return match welcome {
                    Some(w) => Ok(Welcomed {
                        id: w.id,
                        kind: ServerKind::HubChat {
                            version: w.version,
                            max_packet: w.max_packet,
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

/// Turns packets into events until the connection ends, then reports why.
fn read_loop(mut reader: FrameReader<TcpStream>, sink: &dyn Fn(SessionEvent)) {
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
            ServerPacket::Picture { id, png } => {
                if let Ok(picture) = avatar::decode_picture(&png) {
                    sink(SessionEvent::Picture { id, picture });
                }
            }
            ServerPacket::ServerClose { message } => break message,
            ServerPacket::InfoRequest | ServerPacket::Welcome(_) | ServerPacket::Unknown { .. } => {
            }
        }
    };
    sink(SessionEvent::Lost { reason });
}
