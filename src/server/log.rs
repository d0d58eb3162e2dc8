//! Server events as lines of text, for the headless log and the window's log.
//!
//! Message text comes from strangers: control characters, bidi controls and
//! line or paragraph separators are shown escaped, so a client cannot move
//! the cursor, recolour the owner's terminal or make a line read backwards,
//! and line breaks are shown as `⏎` so every event stays on one line. Any
//! text a client chose is cut at [`SHOWN_CHARS`] characters, so one line
//! never costs the owner's terminal more than a few hundred bytes.
//!
//! The headless log also goes through a [`Throttle`]: past a few lines a
//! second from one sender (or past a few hundred in all) events are counted
//! and summed up once a second, so a flood cannot fill a disk.
//!
//! What people write is shown by default, as the original server does; an
//! owner who should not read it can hide it ([`MessageText::Hidden`]), and
//! the log then says only who wrote to whom and how much.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Local};

use std::net::SocketAddr;

use crate::common::tls::Fingerprint;
use crate::server::event::{Collapsed, Event, LeaveReason, Party, ServerEvent};

/// How many characters of a text a client chose (a message, a name, an id)
/// a log line shows; the rest is counted: `... (1,234 more)`.
pub const SHOWN_CHARS: usize = 200;

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

/// What someone did with a file, after their name: "offers photo.png
/// (2.4 MB) to bob", or "offers a file (2.4 MB) to bob" when the owner
/// hides what is written (a file's name is content too).
pub fn file_sentence(verb: &str, file: Option<&str>, rest: &str, text: MessageText) -> String {
    let file = match (file, text) {
        (Some(name), MessageText::Shown) => format!(" {}", printable(name)),
        (Some(_), MessageText::Hidden) => " a file".into(),
        (None, _) => String::new(),
    };
    format!("{}{file}{}", printable(verb), printable(rest))
}

/// What happened, in words.
pub fn describe(what: &ServerEvent, message_text: MessageText) -> String {
    match what {
        ServerEvent::Listening { addr, fingerprint } => {
            // The address last: scripts read the port after the last colon.
            format!("server fingerprint {fingerprint}, listening on {addr}")
        }
        ServerEvent::Stopped => "stopped; every client was sent SERVER CLOSE".into(),
        ServerEvent::Joined {
            who,
            addr,
            hubchat,
            identity,
            ..
        } => {
            format!(
                "{}{}",
                printable(&who.name),
                joined_detail(who, *addr, *hubchat, identity.as_ref())
            )
        }
        ServerEvent::Left { who, reason } => {
            format!(
                "{} ({}) left: {}",
                printable(&who.name),
                who.id,
                printable(&reason.to_string())
            )
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
            format!("{addr}{asked} {verb}: {}", printable(&reason.to_string()))
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
        ServerEvent::Error { message } => format!("error: {}", printable(message)),
        ServerEvent::Owner { what } => format!("the owner {}", printable(what)),
        ServerEvent::File {
            who,
            verb,
            file,
            rest,
        } => format!(
            "{} ({}) {}",
            printable(&who.name),
            who.id,
            file_sentence(verb, file.as_deref(), rest, message_text)
        ),
        ServerEvent::Limited { who, limit, count } => format!(
            "{} ({}) {}{}",
            printable(&who.name),
            who.id,
            printable(&limit.describe()),
            times_since(*count)
        ),
        ServerEvent::Discovery(status) => status.to_string(),
        ServerEvent::Skipped { count } => format!(
            "({} more messages were relayed but not logged: the log fell behind)",
            grouped(*count)
        ),
        ServerEvent::Collapsed { counts } => format!(
            "(not logged one by one, the log fell behind: {})",
            collapsed_counts(counts)
        ),
    }
}

/// `12,345 errors for unknown recipients, 2 refused connections`.
fn collapsed_counts(c: &Collapsed) -> String {
    let kinds = [
        (
            c.undeliverable,
            "error for an unknown recipient",
            "errors for unknown recipients",
        ),
        (c.refused, "refused connection", "refused connections"),
        (c.errors, "server error", "server errors"),
        (c.pictures, "avatar sent", "avatars sent"),
        (
            c.joined_and_left,
            "client that joined and left",
            "clients that joined and left",
        ),
        (
            c.limited,
            "time a client was slowed or refused something",
            "times clients were slowed or refused something",
        ),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(n, ..)| *n > 0)
        .map(|&(n, one, many)| counted(n, one, many))
        .collect();
    parts.join(", ")
}

/// What follows a limit line that stands for more than one time the limit
/// applied: ` (1,234 times since the last such line)`.
pub fn times_since(count: u64) -> String {
    if count > 1 {
        format!(" ({} times since the last such line)", grouped(count))
    } else {
        String::new()
    }
}

/// `1 error`, `12,345 errors`.
fn counted(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", grouped(n))
    }
}

/// A count with thousands separated: `12,345`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// What follows a newcomer's name: ` (client0) joined from ADDR [kind]`.
pub fn joined_detail(
    who: &Party,
    addr: SocketAddr,
    hubchat: bool,
    identity: Option<&Fingerprint>,
) -> String {
    let kind = match (hubchat, identity) {
        (_, Some(id)) => format!("HubChat, encrypted, identity {id}"),
        (true, None) => "HubChat, not encrypted".into(),
        (false, None) => "original client, not encrypted".into(),
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

/// The text, at most [`SHOWN_CHARS`] characters of it, with line breaks
/// shown as `⏎` and other control characters, bidi controls and line or
/// paragraph separators escaped (`\u{202e}`).
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * SHOWN_CHARS));
    let mut chars = text.chars();
    for c in chars.by_ref().take(SHOWN_CHARS) {
        match c {
            '\n' => out.push('⏎'),
            c if c.is_control() || is_bidi_or_separator(c) => {
                let _ = write!(out, "{}", c.escape_unicode());
            }
            c => out.push(c),
        }
    }
    let more = chars.count();
    if more > 0 {
        let _ = write!(out, "... ({} more)", grouped(more as u64));
    }
    out
}

/// Characters that reorder or break a line without being control
/// characters: the bidi embeddings, overrides and isolates, the directional
/// marks, and the line and paragraph separators.
fn is_bidi_or_separator(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// How many lines one sender (or one address, for refused connections) may
/// put in the headless log per second before the rest are counted.
pub const LINES_PER_SENDER_PER_SECOND: u64 = 10;

/// How many lines of messages, errors, refusals and avatars the headless log
/// writes per second in all before the rest are counted. Joins, leaves and
/// summaries are always written. With lines cut at [`SHOWN_CHARS`], this
/// keeps a log file under about a megabyte a minute per ten flooders, and
/// under about 25 MB a minute whatever happens.
pub const LINES_PER_SECOND: u64 = 200;

/// The most senders one second's summary keeps apart; past it, new senders
/// are counted together.
const MAX_SENDERS: usize = 1_000;

/// Collapses repeated events of the headless log per second: the first
/// [`LINES_PER_SENDER_PER_SECOND`] lines of one kind from one sender are
/// written, the rest counted and summed up when the second is over:
/// `alice (client3): 5,000 more messages to unknown clients in the last
/// second`.
#[derive(Debug)]
pub struct Throttle {
    since: Instant,
    written: u64,
    senders: HashMap<(Kind, String), Tally>,
    /// Events over the overall limit, or from senders past [`MAX_SENDERS`].
    others: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Message,
    Undeliverable,
    Refused,
    Error,
    Picture,
    Limited,
}

impl Kind {
    fn what(self) -> (&'static str, &'static str) {
        match self {
            Kind::Message => ("message", "messages"),
            Kind::Undeliverable => (
                "message to an unknown client",
                "messages to unknown clients",
            ),
            Kind::Refused => ("refused connection", "refused connections"),
            Kind::Error => ("error", "errors"),
            Kind::Picture => ("avatar", "avatars"),
            Kind::Limited => (
                "line about a limit it was held to",
                "lines about limits it was held to",
            ),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    shown: u64,
    counted: u64,
}

impl Throttle {
    pub fn new(now: Instant) -> Self {
        Throttle {
            since: now,
            written: 0,
            senders: HashMap::new(),
            others: 0,
        }
    }

    /// Whether `event` should be written now; if not, it is counted for the
    /// summary.
    pub fn admit(&mut self, event: &ServerEvent) -> bool {
        let Some(key) = sender(event) else {
            return true;
        };
        let known = self.senders.len() < MAX_SENDERS || self.senders.contains_key(&key);
        if !known {
            self.others += 1;
            return false;
        }
        let tally = self.senders.entry(key).or_default();
        if tally.shown < LINES_PER_SENDER_PER_SECOND && self.written < LINES_PER_SECOND {
            tally.shown += 1;
            self.written += 1;
            true
        } else if tally.shown < LINES_PER_SENDER_PER_SECOND {
            self.others += 1;
            false
        } else {
            tally.counted += 1;
            false
        }
    }

    /// When a second has passed since the last summary, the summary lines
    /// (without timestamps) of what was counted, and a fresh second.
    pub fn roll(&mut self, now: Instant) -> Vec<String> {
        if now.duration_since(self.since) < Duration::from_secs(1) {
            return Vec::new();
        }
        self.finish(now)
    }

    /// The summary of what was counted so far, and a fresh second.
    pub fn finish(&mut self, now: Instant) -> Vec<String> {
        let mut lines: Vec<String> = std::mem::take(&mut self.senders)
            .into_iter()
            .filter(|(_, t)| t.counted > 0)
            .map(|((kind, who), t)| {
                let (one, many) = kind.what();
                let (one, many) = (format!("more {one}"), format!("more {many}"));
                format!(
                    "{who}: {} in the last second, not logged one by one",
                    counted(t.counted, &one, &many)
                )
            })
            .collect();
        lines.sort();
        if self.others > 0 {
            lines.push(format!(
                "{} in the last second, not logged one by one (the log writes at most {LINES_PER_SECOND} a second)",
                counted(self.others, "more event", "more events")
            ));
        }
        *self = Throttle::new(now);
        lines
    }
}

/// Who an event is repeated for, if it is a kind that is throttled.
fn sender(event: &ServerEvent) -> Option<(Kind, String)> {
    let who = |p: &Party| format!("{} ({})", printable(&p.name), p.id);
    Some(match event {
        ServerEvent::Relayed { from, .. } => (Kind::Message, who(from)),
        ServerEvent::Undeliverable { from, .. } => (Kind::Undeliverable, who(from)),
        ServerEvent::Pictured { who: w, .. } => (Kind::Picture, who(w)),
        ServerEvent::Refused { addr, .. } => (Kind::Refused, addr.ip().to_string()),
        ServerEvent::Error { .. } => (Kind::Error, "the server".into()),
        ServerEvent::Limited { who: w, .. } => (Kind::Limited, who(w)),
        _ => return None,
    })
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
    fn a_file_event_names_who_and_what_and_escapes_the_file_name() {
        let what = ServerEvent::File {
            who: party("client0", "alice"),
            verb: "offers".into(),
            file: Some("evil\u{1b}[2J.txt".into()),
            rest: " (12 bytes) to bob".into(),
        };
        let line = describe(&what, MessageText::Shown);
        assert!(line.starts_with("alice (client0) offers evil"), "{line}");
        assert!(line.ends_with(".txt (12 bytes) to bob"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        assert_eq!(
            describe(&what, MessageText::Hidden),
            "alice (client0) offers a file (12 bytes) to bob",
            "the name is content, hidden with the messages' text"
        );
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
    fn bidi_controls_and_line_separators_are_escaped_like_control_characters() {
        assert_eq!(
            printable("\u{202e}ecila\u{2028}x\u{2029}\u{2066}\u{200f}\u{61c}"),
            "\\u{202e}ecila\\u{2028}x\\u{2029}\\u{2066}\\u{200f}\\u{61c}"
        );
        assert_eq!(
            printable("Zoë 陈 👋 שלום"),
            "Zoë 陈 👋 שלום",
            "text stays as written"
        );
    }

    #[test]
    fn long_text_shows_200_characters_then_how_many_more() {
        let text = "é".repeat(200) + &"x".repeat(1234);
        let shown = printable(&text);
        assert_eq!(shown, "é".repeat(200) + "... (1,234 more)");
        assert_eq!(
            printable(&"y".repeat(200)),
            "y".repeat(200),
            "200 fit whole"
        );
        let what = ServerEvent::Undeliverable {
            from: party("client0", "alice"),
            to: "z".repeat(100_000),
        };
        assert!(describe(&what, MessageText::Shown).len() < 300);
    }

    fn undeliverable(id: &str, name: &str) -> ServerEvent {
        ServerEvent::Undeliverable {
            from: party(id, name),
            to: "client999999".into(),
        }
    }

    #[test]
    fn repeated_errors_from_one_sender_are_summed_up_once_a_second() {
        let start = Instant::now();
        let mut throttle = Throttle::new(start);
        let admitted = (0..5_000)
            .filter(|_| throttle.admit(&undeliverable("client3", "alice")))
            .count();
        assert_eq!(admitted as u64, LINES_PER_SENDER_PER_SECOND);
        assert!(
            throttle.admit(&undeliverable("client4", "bob")),
            "others still logged"
        );
        assert!(throttle.roll(start + Duration::from_millis(900)).is_empty());
        assert_eq!(
            throttle.roll(start + Duration::from_secs(1)),
            [
                "alice (client3): 4,990 more messages to unknown clients in the last second, \
              not logged one by one"
            ]
        );
        assert!(
            throttle.admit(&undeliverable("client3", "alice")),
            "a new second"
        );
    }

    #[test]
    fn past_the_overall_limit_events_are_counted_together() {
        let start = Instant::now();
        let mut throttle = Throttle::new(start);
        let admitted = (0..1_000)
            .filter(|k| throttle.admit(&undeliverable(&format!("client{k}"), "x")))
            .count();
        assert_eq!(admitted as u64, LINES_PER_SECOND);
        assert!(throttle.admit(&ServerEvent::Stopped), "never throttled");
        let summary = throttle.roll(start + Duration::from_secs(1));
        assert_eq!(summary.len(), 1, "{summary:?}");
        assert!(summary[0].starts_with("800 more events in the last second"));
    }

    #[test]
    fn collapsed_counts_name_every_kind() {
        let what = ServerEvent::Collapsed {
            counts: Collapsed {
                undeliverable: 12_345,
                refused: 1,
                joined_and_left: 2,
                ..Collapsed::default()
            },
        };
        assert_eq!(
            describe(&what, MessageText::Shown),
            "(not logged one by one, the log fell behind: 12,345 errors for unknown \
             recipients, 1 refused connection, 2 clients that joined and left)"
        );
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let t = timestamp(SystemTime::now());
        assert_eq!(t.len(), "2026-11-25 18:40:01.123".len(), "{t}");
    }
}
