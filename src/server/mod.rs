//! The hub server, without any GUI: the window and the headless logger both
//! drive this same code and read the same [`Events`].
//!
//! A packet's life: socket -> [`connection`] (frames, typed packets) ->
//! [`hub`] (who hears it) -> the receiver's [`outbox`] -> its writer thread
//! -> socket. [`listener`] owns the listening socket and the shutdown.

pub mod capacity;
pub mod cli;
pub mod connection;
pub mod event;
pub mod form;
pub mod gui;
pub mod hub;
pub mod listener;
pub mod log;
pub mod outbox;
pub mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use event::{Event, Events, LeaveReason, Party, ServerEvent};
pub use listener::{Server, StartError};
pub use outbox::QueueLimits;

use crate::common::frame::DEFAULT_MAX_BODY;

/// The port HubChat servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5050;

/// How a server runs. [`ServerConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// How long a new connection may take to send its INFO.
    pub handshake_timeout: Duration,
    /// How many clients may be joined at once.
    pub max_clients: usize,
    /// The largest packet body accepted from a client, in bytes.
    pub max_packet: usize,
    /// How much may be queued for a client that reads slowly, and for how
    /// long, before it is dropped.
    pub queue: QueueLimits,
}

impl ServerConfig {
    pub fn new(bind: SocketAddr) -> Self {
        ServerConfig {
            bind,
            handshake_timeout: Duration::from_secs(10),
            max_clients: 10_000,
            max_packet: DEFAULT_MAX_BODY,
            queue: QueueLimits {
                soft_bytes: 1 << 20,
                hard_bytes: 8 << 20,
                grace: Duration::from_secs(10),
            },
        }
    }
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
