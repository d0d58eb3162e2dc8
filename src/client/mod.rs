//! The client: its session with a server (no GUI code, tested headless).
//! The client window is still to come.

pub mod session;

pub use session::{ConnectError, ServerKind, Session, SessionConfig, SessionEvent};
