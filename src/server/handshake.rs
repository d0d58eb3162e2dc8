//! What the server decides while a client is joining, apart from any I/O.
//!
//! The connection's thread reads packets and does what this says: a
//! [`Handshake`] takes each packet (and the outcome of what it asked for:
//! the TLS upgrade, the password check) and answers with one [`Action`].
//! Keeping the decisions here, in plain data, is what lets them be fuzzed
//! and tested without sockets, and keeps the blocking loop a loop.
//!
//! The order, for a HubChat client that offers to encrypt:
//!
//! 1. plain INFO with `hubchat.tls` → [`Action::StartTls`] (send STARTTLS,
//!    run the TLS handshake, then call [`Handshake::encrypted`]);
//! 2. INFO again, inside TLS, with the password if any →
//!    [`Action::CheckPassword`] when the server has one (then call
//!    [`Handshake::password_checked`]), else [`Action::Join`].
//!
//! An original client (and a HubChat client that does not offer TLS)
//! joins from its plain INFO, unless the owner allows only encrypted
//! clients or has set a password (which only an encrypted client can
//! give).

use crate::common::packet::{ClientPacket, ErrorCode, Info};
use crate::server::hub::Refusal;

/// What the owner decided for every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Original (unencrypted) clients may join.
    pub allow_original: bool,
    /// A password is needed to join.
    pub password: bool,
}

/// What the connection's thread is to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing yet: read the next packet.
    ReadOn,
    /// Send STARTTLS in plain, then run the TLS handshake as the server.
    StartTls,
    /// Check this password (within the per-address limits on guessing).
    CheckPassword(String),
    /// Let the client in with this INFO; `encrypted` says whether it came
    /// through TLS (and so with an identity).
    Join { info: Info, encrypted: bool },
    /// Turn the client away, telling it why.
    Refuse(Refusal),
    /// The client said goodbye before joining.
    Leave,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the first INFO, in plain.
    Plain,
    /// STARTTLS is under way; no packet is expected until it is done.
    Upgrading,
    /// Encrypted; waiting for the INFO repeated inside TLS.
    Secure,
    /// Waiting for the password check of this INFO.
    Checking(Info),
    /// Joined or refused: nothing more to decide.
    Done,
}

/// One joining client's handshake.
#[derive(Debug, Clone)]
pub struct Handshake {
    policy: Policy,
    state: State,
    hubchat: bool,
    encrypted: bool,
}

impl Handshake {
    pub fn new(policy: Policy) -> Self {
        Handshake {
            policy,
            state: State::Plain,
            hubchat: false,
            encrypted: false,
        }
    }

    /// Whether the client has said it is HubChat (so is told why in ERROR
    /// form rather than SERVER CLOSE).
    pub fn hubchat(&self) -> bool {
        self.hubchat
    }

    /// Whether the connection has been encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Decides what a packet from the client leads to.
    pub fn packet(&mut self, packet: ClientPacket) -> Action {
        match (&self.state, packet) {
            (State::Done, _) => Action::ReadOn,
            (_, ClientPacket::Disconnect) => self.end(Action::Leave),
            (State::Upgrading | State::Checking(_), _) => self.refuse(
                ErrorCode::MalformedPacket,
                "The client sent a packet in the middle of the encryption handshake.",
            ),
            (State::Plain, ClientPacket::Info(info)) => self.plain_info(info),
            (State::Secure, ClientPacket::Info(info)) => self.secure_info(info),
            (_, ClientPacket::Message { .. } | ClientPacket::Chat(_)) => self.refuse(
                ErrorCode::MalformedPacket,
                "A message arrived before the client sent its name, colour and picture.",
            ),
            // Pictures and flags from newer programs wait for the join;
            // receipts and typing before it are about nothing, and skipped.
            (
                _,
                ClientPacket::Picture { .. }
                | ClientPacket::Unknown { .. }
                | ClientPacket::Receipt(_)
                | ClientPacket::Typing { .. }
                | ClientPacket::File(_),
            ) => Action::ReadOn,
        }
    }

    /// The TLS handshake asked for by [`Action::StartTls`] has finished.
    pub fn encrypted(&mut self) -> Action {
        if self.state == State::Upgrading {
            self.state = State::Secure;
            self.encrypted = true;
        }
        Action::ReadOn
    }

    /// The outcome of the check asked for by [`Action::CheckPassword`].
    /// An answer nobody asked for changes nothing (it used to end the
    /// handshake silently, so the client's INFO was never answered).
    pub fn password_checked(&mut self, right: bool) -> Action {
        let info = match std::mem::replace(&mut self.state, State::Done) {
            State::Checking(info) => info,
            other => {
                self.state = other;
                return Action::ReadOn;
            }
        };
        if right {
            Action::Join {
                info,
                encrypted: true,
            }
        } else {
            self.refuse(
                ErrorCode::PasswordWrong,
                "The password is not right. Check it with the server's owner and try again.",
            )
        }
    }

    fn plain_info(&mut self, info: Info) -> Action {
        self.hubchat = info.hubchat.is_some();
        let offers_tls = info.hubchat.as_ref().is_some_and(|h| h.tls);
        if offers_tls {
            self.state = State::Upgrading;
            return Action::StartTls;
        }
        if !self.policy.allow_original {
            return self.refuse(
                ErrorCode::EncryptionRequired,
                "This server accepts only encrypted connections. Use the HubChat client.",
            );
        }
        if self.policy.password {
            return self.refuse(
                ErrorCode::PasswordRequired,
                "This server asks for a password, which only the HubChat client can give.",
            );
        }
        self.end(Action::Join {
            info,
            encrypted: false,
        })
    }

    fn secure_info(&mut self, mut info: Info) -> Action {
        let password = info.hubchat.as_mut().and_then(|h| h.password.take());
        if !self.policy.password {
            return self.end(Action::Join {
                info,
                encrypted: true,
            });
        }
        match password {
            Some(password) => {
                self.state = State::Checking(info);
                Action::CheckPassword(password)
            }
            None => self.refuse(
                ErrorCode::PasswordRequired,
                "This server asks for a password. Enter it and connect again.",
            ),
        }
    }

    fn refuse(&mut self, code: ErrorCode, message: &str) -> Action {
        self.end(Action::Refuse(Refusal::new(code, message)))
    }

    fn end(&mut self, action: Action) -> Action {
        self.state = State::Done;
        action
    }
}
