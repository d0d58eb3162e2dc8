//! The client: its session with a server, the controller that owns the
//! session's life, and the model of what it shows (no GUI code, tested
//! headless); the window in `gui` draws them.

pub mod controller;
pub mod file_input;
pub mod file_rows;
pub mod files;
pub mod form;
#[cfg(feature = "gui")]
pub mod gui;
pub mod history;
pub mod model;
pub mod reconnect;
pub mod session;
pub mod trust;

pub use session::{ConnectError, Encryption, ServerKind, Session, SessionConfig, SessionEvent};
