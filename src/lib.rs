//! HubChat: a lightweight LAN messenger. One hub server relays messages
//! between many clients, speaking the wire protocol of the original Python
//! messenger (so old clients and servers keep working) plus extensions that
//! only HubChat peers are ever sent. See `docs/protocol.md`.
//!
//! [`common`] holds what both programs share (framing, packets, profile
//! rules); [`server`] is the hub, whose core has no GUI code, so it is tested
//! headless against real sockets; [`gui`] holds the FLTK pieces both windows
//! share.

pub mod client;
pub mod common;
#[cfg(feature = "gui")]
pub mod gui;
pub mod load;
pub mod server;
