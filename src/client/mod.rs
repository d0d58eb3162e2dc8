//! The client: its session with a server and the model of what it shows
//! (no GUI code, tested headless).
//! The client window is still to come.

pub mod form;
pub mod gui;
pub mod model;
pub mod session;

pub use session::{ConnectError, ServerKind, Session, SessionConfig, SessionEvent};
