//! The hub server, without any GUI: the window and the headless logger both
//! drive this same code and read the same [`Events`].
//!
//! A packet's life: socket -> [`connection`] (frames, typed packets) ->
//! [`hub`] (who hears it) -> the receiver's [`outbox`] -> its writer thread
//! -> socket. [`listener`] owns the listening socket and the shutdown.

pub mod budget;
pub mod capacity;
pub mod cli;
pub mod connection;
pub mod event;
pub mod form;
pub mod guesses;
#[cfg(feature = "gui")]
pub mod gui;
pub mod handshake;
pub mod hub;
pub mod limited;
pub mod listener;
pub mod log;
pub mod outbox;
pub mod password;
pub mod post;
pub mod rate;
pub mod store;
pub mod transfers;
pub mod trust;
pub mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use budget::{Budget, DEFAULT_MAX_QUEUED};
pub use event::{Event, Events, LeaveReason, Party, ServerEvent};
pub use limited::Limit;
pub use listener::{BanBy, BanError, Server, StartError};
pub use outbox::QueueLimits;
pub use rate::MessageRate;

use crate::common::frame::DEFAULT_MAX_BODY;
use crate::common::tls::Credentials;

/// The largest packet body accepted before a client's INFO: 4 KiB.
pub const HANDSHAKE_MAX_BODY: usize = 4 << 10;

/// The longest message text relayed, in bytes of UTF-8: 64 KiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 10;

/// The port HubChat servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5050;

/// How a server runs. [`ServerConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// How long a new connection may take to send its INFO, counted from
    /// accept: one deadline for the whole handshake, however slowly the
    /// bytes trickle in.
    pub handshake_timeout: Duration,
    /// The largest packet body accepted before INFO is: an INFO is a few
    /// hundred bytes, so nobody needs a megabyte before saying who they are.
    pub handshake_max_packet: usize,
    /// How long a packet that has started may take to arrive whole. Between
    /// packets a connection may stay silent for ever: the original client
    /// sends nothing when nobody talks, and has no keep-alive.
    pub packet_timeout: Duration,
    /// How many connections one address may have open at once; 0 for no
    /// limit (the load tool's runs, which open hundreds from 127.0.0.1).
    pub max_per_address: usize,
    /// How many connections may be in their handshake at once (at least 1).
    /// When full, a newcomer takes the slot of the oldest handshake from the
    /// address holding the most, so stuck ones cannot lock anybody out.
    pub max_handshaking: usize,
    /// How many clients may be joined at once.
    pub max_clients: usize,
    /// The largest packet body accepted from a client, in bytes.
    pub max_packet: usize,
    /// The longest message text relayed, in bytes of UTF-8; HubChat clients
    /// are told it in WELCOME. A longer one is refused (ERROR
    /// `message_too_long` to a HubChat sender, dropped for an original one)
    /// and the connection stays.
    pub max_message: usize,
    /// The largest file passed on, in bytes; HubChat clients are told it in
    /// WELCOME, and a larger offer goes back to its sender refused.
    pub max_file: u64,
    /// How fast one client may send messages; `None` for no limit (the load
    /// tool's runs, which send as fast as the relay goes). A client above it
    /// is read from more slowly, so it cannot bury a reader under messages.
    pub message_rate: Option<MessageRate>,
    /// How much may be queued for a client that reads slowly, and for how
    /// long, before it is dropped.
    pub queue: QueueLimits,
    /// How many bytes may wait to be sent in all (every client's queue and
    /// the events for the window or log together); `None` for no budget.
    /// When it is reached, senders wait, newcomers are refused and clients
    /// that do not read are dropped until it is free (see [`budget`]).
    pub max_queued: Option<usize>,
    /// The name to answer LAN discovery with (see
    /// [`crate::common::discovery`]), on the UDP port equal to the TCP
    /// port; `None` to stay unseen (tests, and owners who switch it off).
    pub discovery: Option<String>,
    /// The server's certificate and key (its identity, which clients pin);
    /// `None` makes a new one at start (tests; the programs keep theirs in
    /// the settings folder, see [`identity_file`]).
    pub credentials: Option<Credentials>,
    /// Whether original (unencrypted) clients may join. Off, they are sent
    /// SERVER CLOSE with a sentence.
    pub allow_original: bool,
    /// The password needed to join, as [`password::hash`] keeps it; `None`
    /// for none.
    pub password: Option<String>,
    /// The database of names and bans (see [`store`]); `None` keeps them in
    /// memory only, forgotten at stop (tests). The programs use
    /// [`database_file`].
    pub database: Option<std::path::PathBuf>,
}

impl ServerConfig {
    pub fn new(bind: SocketAddr) -> Self {
        ServerConfig {
            bind,
            handshake_timeout: Duration::from_secs(10),
            handshake_max_packet: HANDSHAKE_MAX_BODY,
            packet_timeout: Duration::from_secs(30),
            max_per_address: 16,
            max_handshaking: 128,
            max_clients: 10_000,
            max_packet: DEFAULT_MAX_BODY,
            max_message: DEFAULT_MAX_MESSAGE,
            max_file: crate::common::file_packet::DEFAULT_MAX_FILE,
            message_rate: Some(MessageRate::DEFAULT),
            queue: QueueLimits {
                soft_bytes: 1 << 20,
                hard_bytes: 8 << 20,
                grace: Duration::from_secs(10),
            },
            max_queued: Some(DEFAULT_MAX_QUEUED),
            discovery: None,
            credentials: None,
            allow_original: true,
            password: None,
            database: None,
        }
    }
}

/// Where the server keeps its certificate and key: the settings folder,
/// so a copied folder (or a USB stick with `HUBCHAT_CONFIG_DIR`) carries
/// the identity clients have pinned.
pub fn identity_file() -> Option<std::path::PathBuf> {
    crate::common::settings::config_dir().map(|d| d.join("server-identity.pem"))
}

/// Where the server keeps names, identities and bans.
pub fn database_file() -> Option<std::path::PathBuf> {
    crate::common::settings::config_dir().map(|d| d.join("hubchat-server.db"))
}

impl Default for ServerConfig {
    /// All interfaces, port [`DEFAULT_PORT`].
    fn default() -> Self {
        Self::new(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            DEFAULT_PORT,
        ))
    }
}
