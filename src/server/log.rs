//! Server events as lines of text, for the headless log and the window's log.
//!
//! Message text comes from strangers: control characters are shown escaped,
//! so a client cannot move the cursor or recolour the owner's terminal, and
//! line breaks are shown as `⏎` so every event stays on one line.
//!
//! What people write is shown by default, as the original server does; an
//! owner who should not read it can hide it ([`MessageText::Hidden`]), and
//! the log then says only who wrote to whom and how much.

use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::{DateTime, Local};

use std::net::SocketAddr;

use crate::server::event::{Event, LeaveReason, Party, ServerEvent};

/// Whether the log shows the text of relayed messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageText {
    /// `alice -> bob: hello`
    #[default]
    Shown,
    /// `alice -> bob (5 characters)`
    Hidden,
}

impl MessageText {
    /// `Shown` if `show` is true.
    pub fn shown_if(show: bool) -> Self {
        if show {
            MessageText::Shown
        } else {
            MessageText::Hidden
        }
    }
}

/// An event as one line with a local timestamp.
pub fn line(event: &Event, text: MessageText) -> String {
    format!("{} {}", timestamp(event.at), describe(&event.what, text))
}

/// `2026-11-25 18:40:01.123` in local time.
pub fn timestamp(at: SystemTime) -> String {
    DateTime::<Local>::from(at)
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// What happened, in words.
pub fn describe(what: &ServerEvent, message_text: MessageText) -> String {
    match what {
        ServerEvent::Listening { addr } => format!("listening on {addr}"),
        ServerEvent::Stopped => "stopped; every client was sent SERVER CLOSE".into(),
        ServerEvent::Joined {
            who, addr, hubchat, ..
        } => {
            format!(
                "{}{}",
                printable(&who.name),
                joined_detail(who, *addr, *hubchat)
            )
        }
        ServerEvent::Left { who, reason } => {
            format!("{} ({}) left: {}", printable(&who.name), who.id, reason)
        }
        ServerEvent::Pictured { who, png } => format!(
            "{} ({}) sent a custom avatar ({} bytes)",
            printable(&who.name),
            who.id,
            png.len()
        ),
        ServerEvent::Refused { addr, name, reason } => {
            let asked = match name {
                Some(name) => format!(" asking for the name \"{}\"", printable(name)),
                None => String::new(),
            };
            let verb = match reason {
                LeaveReason::ClosedConnection | LeaveReason::SaidGoodbye => "left before joining",
                _ => "refused",
            };
            format!("{addr}{asked} {verb}: {reason}")
        }
        ServerEvent::Relayed { from, to, text } => format!(
            "{} -> {}{}",
            printable(&from.name),
            printable(&to.name),
            message_tail(text, message_text)
        ),
        ServerEvent::Undeliverable { from, to } => format!(
            "{} -> {}: not delivered, no such client is connected",
            printable(&from.name),
            printable(to)
        ),
        ServerEvent::Error { message } => format!("error: {message}"),
        ServerEvent::Skipped { count } => {
            format!("({count} more messages were relayed but not logged: the log fell behind)")
        }
    }
}

/// What follows a newcomer's name: ` (client0) joined from ADDR [kind]`.
pub fn joined_detail(who: &Party, addr: SocketAddr, hubchat: bool) -> String {
    let kind = if hubchat {
        "HubChat"
    } else {
        "original client"
    };
    format!(" ({}) joined from {addr} [{kind}]", who.id)
}

/// What follows `alice -> bob` for a relayed message: `: its text`, or
/// ` (42 characters)` when the text is hidden. The newline the original
/// client adds to every message is not part of what was written, so it is
/// neither shown nor counted. Characters, not bytes: "héllo" is 5.
pub fn message_tail(text: &str, shown: MessageText) -> String {
    let text = text.strip_suffix('\n').unwrap_or(text);
    match shown {
        MessageText::Shown => format!(": {}", printable(text)),
        MessageText::Hidden => match text.chars().count() {
            1 => " (1 character)".into(),
            n => format!(" ({n} characters)"),
        },
    }
}

/// The text with line breaks shown as `⏎` and other control characters
/// escaped.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('⏎'),
            c if c.is_control() => {
                let _ = write!(out, "{}", c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(id: &str, name: &str) -> Party {
        Party {
            id: id.into(),
            name: name.into(),
            color: "blue".into(),
        }
    }

    #[test]
    fn a_relayed_message_reads_sender_arrow_receiver() {
        let what = ServerEvent::Relayed {
            from: party("client0", "alice"),
            to: party("client1", "bob"),
            text: "hello\n".into(),
        };
        assert_eq!(describe(&what, MessageText::Shown), "alice -> bob: hello");
    }

    #[test]
    fn hidden_text_is_counted_in_characters_not_bytes() {
        let what = |text: &str| ServerEvent::Relayed {
            from: party("client0", "alice"),
            to: party("client1", "bob"),
            text: text.into(),
        };
        let hidden = |text: &str| describe(&what(text), MessageText::Hidden);
        assert_eq!(hidden("héllo 陈 👋\n"), "alice -> bob (9 characters)");
        assert_eq!(hidden("a\nb"), "alice -> bob (3 characters)");
        assert_eq!(hidden("?"), "alice -> bob (1 character)");
        assert_eq!(hidden(""), "alice -> bob (0 characters)");
    }

    #[test]
    fn terminal_escapes_and_line_breaks_cannot_break_the_log() {
        assert_eq!(printable("a\nb\x1b[31mc"), "a⏎b\\u{1b}[31mc");
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = timestamp(SystemTime::now());
        assert_eq!(t.len(), "2026-11-25 18:40:01.123".len(), "{t}");
    }
}
