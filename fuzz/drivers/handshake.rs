//! Drives the server's handshake (`hubchat::server::handshake`) with a
//! byte string read as a script, and checks after every step what the
//! handshake promises the server: nobody joins in plain where the owner
//! forbade it, nobody joins without the password when there is one, a
//! password is only ever asked for inside TLS, and after a join, a refusal
//! or a goodbye nothing more is decided.
//!
//! Shared, by `#[path]`, by the fuzz target `handshake` and by the stable
//! randomized test `tests/randomized.rs`, so both hold the same rules.
//!
//! The script: the first byte is the owner's policy (bit 0: original
//! clients allowed, bit 1: a password is set); then each byte is one step,
//! by its value modulo 8:
//!
//! - 0: a frame from the client: a 10-byte header and its body follow, and
//!   are decoded as the server decodes them (a frame that does not decode
//!   ends the script, as it ends the connection);
//! - 1: the TLS upgrade finished; 2 and 3: the password check said right
//!   and wrong (in any order, also when nobody asked: the handshake must
//!   shrug those off);
//! - 4: an INFO built from the next byte (bit 0: HubChat's extension,
//!   bit 1: it offers TLS, bit 2: it carries a password), which lets a
//!   fuzzer reach every state without first finding the JSON;
//! - 5: DISCONNECT; 6: a MESSAGE; 7: a PICTURE or an unknown flag.

use hubchat::common::frame::{self, Check, HEADER_LEN};
use hubchat::common::packet::{ClientHello, ClientPacket, ErrorCode, Info};
use hubchat::server::handshake::{Action, Handshake, Policy};

/// The server's limit on a joining client's packets is far smaller; a
/// larger one lets any frame the fuzzer writes through to the decoder.
const MAX_BODY: usize = 64 << 10;

/// Runs one script; panics (with the rule broken) if the handshake breaks
/// one of its promises.
pub fn run(script: &[u8]) {
    let Some((&first, mut rest)) = script.split_first() else {
        return;
    };
    let policy = Policy {
        allow_original: first & 1 != 0,
        password: first & 2 != 0,
    };
    let mut handshake = Handshake::new(policy);
    let mut watch = Watch::new(policy);
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let (step, action) = match op % 8 {
            0 => match next_frame(&mut rest) {
                Some(packet) => (Step::of(&packet), handshake.packet(packet)),
                None => return,
            },
            1 => (Step::Encrypted, handshake.encrypted()),
            2 => (Step::Checked(true), handshake.password_checked(true)),
            3 => (Step::Checked(false), handshake.password_checked(false)),
            4 => {
                let flags = take_byte(&mut rest);
                (Step::Decisive, handshake.packet(built_info(flags)))
            }
            5 => (Step::Decisive, handshake.packet(ClientPacket::Disconnect)),
            6 => (Step::Decisive, handshake.packet(message())),
            _ => (Step::Waiting, handshake.packet(other_packet(op))),
        };
        watch.after(step, &action, &handshake);
    }
}

/// What the driver did before the handshake answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// INFO, MESSAGE or DISCONNECT: before the end, each is answered with
    /// a decision, never with "read on" (or the client would wait for the
    /// handshake's deadline).
    Decisive,
    /// PICTURE or a flag from a newer program: these wait for the join.
    Waiting,
    Encrypted,
    Checked(bool),
}

impl Step {
    fn of(packet: &ClientPacket) -> Step {
        match packet {
            ClientPacket::Picture { .. } | ClientPacket::Unknown { .. } => Step::Waiting,
            _ => Step::Decisive,
        }
    }
}

/// What the handshake has said so far, as the connection's thread would
/// have seen it.
struct Watch {
    policy: Policy,
    /// It answered StartTls.
    upgrading: bool,
    /// The TLS upgrade finished after it asked for it.
    encrypted: bool,
    /// It asked for a password check.
    asked_password: bool,
    /// It asked for a password check that has not been answered yet.
    checking: bool,
    /// It let the client in, refused it or saw it leave.
    finished: bool,
}

impl Watch {
    fn new(policy: Policy) -> Self {
        Watch {
            policy,
            upgrading: false,
            encrypted: false,
            asked_password: false,
            checking: false,
            finished: false,
        }
    }

    fn after(&mut self, step: Step, action: &Action, handshake: &Handshake) {
        if self.finished {
            assert_eq!(action, &Action::ReadOn, "a decision after the end");
            return;
        }
        if step == Step::Encrypted && self.upgrading {
            self.encrypted = true;
        }
        let answers_check = self.checking && matches!(step, Step::Checked(_));
        if step == Step::Decisive || answers_check {
            assert_ne!(action, &Action::ReadOn, "no decision on {step:?}");
        }
        assert_eq!(
            handshake.is_encrypted(),
            self.encrypted,
            "encrypted without a finished upgrade, or the reverse"
        );
        match action {
            Action::ReadOn => {}
            Action::StartTls => {
                assert_eq!(step, Step::Decisive, "StartTls not from an INFO");
                assert!(!self.upgrading, "StartTls twice");
                self.upgrading = true;
            }
            Action::CheckPassword(_) => {
                assert!(self.policy.password, "a password asked with none set");
                assert!(self.encrypted, "a password asked for in plain");
                assert!(!self.asked_password, "a password asked twice");
                assert_eq!(step, Step::Decisive, "a password not from an INFO");
                self.asked_password = true;
                self.checking = true;
            }
            Action::Join { info, encrypted } => {
                self.check_join(step, info, *encrypted);
                self.finished = true;
            }
            Action::Refuse(refusal) => {
                if answers_check && step == Step::Checked(false) {
                    assert_eq!(refusal.code, ErrorCode::PasswordWrong);
                }
                self.finished = true;
            }
            Action::Leave => {
                assert_eq!(step, Step::Decisive, "a goodbye not from DISCONNECT");
                self.finished = true;
            }
        }
        if matches!(step, Step::Checked(_)) && !answers_check {
            assert_eq!(action, &Action::ReadOn, "an unasked password check decided");
        }
    }

    fn check_join(&self, step: Step, info: &Info, encrypted: bool) {
        assert_eq!(encrypted, self.encrypted, "a join that misstates TLS");
        if !encrypted {
            assert!(self.policy.allow_original, "a plain join where forbidden");
            assert!(!self.policy.password, "a plain join past a password");
            assert!(!self.upgrading, "a plain join after StartTls");
            return;
        }
        let password = info.hubchat.as_ref().and_then(|h| h.password.as_ref());
        assert!(password.is_none(), "the password kept in the joined INFO");
        if self.policy.password {
            assert!(self.asked_password, "a join past an unchecked password");
            assert_eq!(
                step,
                Step::Checked(true),
                "a join not from a right password"
            );
        } else {
            assert_eq!(step, Step::Decisive, "a join not from the INFO");
        }
    }
}

/// The next frame of the script, decoded as a client's packet; `None` when
/// it is cut short or does not decode.
fn next_frame(rest: &mut &[u8]) -> Option<ClientPacket> {
    let Ok(Check::Complete { body_len }) = frame::check(rest, MAX_BODY) else {
        return None;
    };
    let body = &rest[HEADER_LEN..HEADER_LEN + body_len];
    *rest = &rest[HEADER_LEN + body_len..];
    ClientPacket::decode(body).ok()
}

fn take_byte(rest: &mut &[u8]) -> u8 {
    let Some((&b, tail)) = rest.split_first() else {
        return 0;
    };
    *rest = tail;
    b
}

fn built_info(flags: u8) -> ClientPacket {
    let hello = ClientHello {
        version: 2,
        image_name: None,
        tls: flags & 2 != 0,
        password: (flags & 4 != 0).then(|| "sesame".to_string()),
    };
    ClientPacket::Info(Info {
        name: "ann".into(),
        color: "blue".into(),
        image_name: "image_1.png".into(),
        hubchat: (flags & 1 != 0).then_some(hello),
    })
}

fn message() -> ClientPacket {
    ClientPacket::Message {
        to: "client1".into(),
        text: "hello".into(),
    }
}

fn other_packet(op: u8) -> ClientPacket {
    if op & 8 == 0 {
        ClientPacket::Picture { png: Vec::new() }
    } else {
        ClientPacket::Unknown {
            flag: "TYPING".into(),
        }
    }
}
