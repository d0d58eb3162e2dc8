//! What the server window shows, derived from server events by plain code.
//!
//! The window owns a [`ServerView`]; each time it wakes it hands over every
//! event that arrived since the last wake-up and gets back a [`Changes`]
//! saying what to redraw: rows, new log lines, the status line, and which
//! sounds to play. Nothing here touches FLTK, so the whole of what the owner
//! sees is tested headless.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use chrono::{DateTime, Local};

use crate::common::avatar::{self, Picture};
use crate::common::color::{self, Rgb};
use crate::common::packet::client_number;
use crate::common::tls::Fingerprint;
use crate::server::event::{Event, LeaveReason, Party, ServerEvent};
use crate::server::log::{
    describe, joined_detail, message_tail, printable, times_since, MessageText,
};
use crate::server::store::{Ban, BanTarget, Binding};
use crate::server::BanBy;

/// How many log lines the window keeps; older ones scroll away for good.
pub const MAX_LOG_LINES: usize = 5_000;

/// How many new lines one update adds at most. Nobody reads thousands of
/// lines a second; drawing them would only make the window slow to answer.
/// The rest are counted in one summary line.
pub const MAX_LINES_PER_UPDATE: usize = 300;

/// One connected client as the clients panel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    /// The `k` of `client<k>`: rows are kept in join order by it.
    pub order: u64,
    pub id: String,
    pub name: String,
    /// Its colour as shown (legible on the panel's background).
    pub color: Rgb,
    pub image_name: String,
    /// Its own avatar picture, if it sent one (HubChat clients only).
    pub picture: Option<Arc<Picture>>,
    pub addr: SocketAddr,
    /// Local time of joining, `HH:MM:SS`.
    pub joined: String,
    /// Its certificate's fingerprint: only encrypted clients have one, and
    /// only they can be banned as a computer rather than an address.
    pub identity: Option<Fingerprint>,
}

/// How a piece of a log line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ink {
    /// The timestamp.
    Time,
    /// Ordinary text.
    Plain,
    /// A client's name, in its colour.
    Name(Rgb),
    /// Server lifecycle: listening, stopped, joined, left.
    Notice,
    /// Something went wrong.
    Error,
}

/// One line of the log, as pieces in their inks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine(pub Vec<(Ink, String)>);

impl LogLine {
    /// The line's text without inks.
    pub fn text(&self) -> String {
        self.0.iter().map(|(_, s)| s.as_str()).collect()
    }
}

/// A sound the window should play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cue {
    Joined,
    Left,
    Error,
}

/// Whether the server runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Stopped,
    Running { addr: SocketAddr },
    Stopping,
}

/// What changed in one update.
#[derive(Debug, Default)]
pub struct Changes {
    pub rows: bool,
    pub state: bool,
    pub new_lines: Vec<LogLine>,
    /// At most one of each, however many events asked for it.
    pub cues: Vec<Cue>,
}

/// Everything the server window displays.
#[derive(Debug)]
pub struct ServerView {
    pub state: RunState,
    pub rows: Vec<ClientRow>,
    /// The address to tell clients when listening on all interfaces.
    pub advertised: Option<IpAddr>,
    /// Whether relayed messages are logged with their text. A change
    /// applies to lines logged from then on.
    pub message_text: MessageText,
    /// The server's key (its certificate's fingerprint), once it has
    /// started or been read from the settings folder. It stays after a
    /// stop: the next start uses the same one.
    pub key: Option<Fingerprint>,
    /// The id of the client the owner selected; cleared when it leaves.
    selected: Option<String>,
    /// Byte length of each line in the log, oldest first, to trim it.
    line_lengths: VecDeque<usize>,
}

impl ServerView {
    pub fn new(advertised: Option<IpAddr>) -> Self {
        ServerView {
            state: RunState::Stopped,
            rows: Vec::new(),
            advertised,
            message_text: MessageText::Shown,
            key: None,
            selected: None,
            line_lengths: VecDeque::new(),
        }
    }

    /// The server key as the owner reads it out: five groups of four, or
    /// why there is none yet.
    pub fn key_text(&self) -> String {
        match self.key {
            Some(key) => key.short(),
            None => "(made at first Start)".into(),
        }
    }

    /// Selects the client in row `index`; an index past the rows selects
    /// none.
    pub fn select(&mut self, index: usize) {
        self.selected = self.rows.get(index).map(|r| r.id.clone());
    }

    /// The selected client's row, while it is connected.
    pub fn selected(&self) -> Option<&ClientRow> {
        let id = self.selected.as_deref()?;
        self.rows.iter().find(|r| r.id == id)
    }

    /// Where the selected client's row is now (rows move as others join
    /// and leave).
    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected.as_deref()?;
        self.rows.iter().position(|r| r.id == id)
    }

    /// Applies a batch of events. Under a flood only the latest
    /// [`MAX_LINES_PER_UPDATE`] lines are built; the rest are counted.
    pub fn apply(&mut self, events: &[Event]) -> Changes {
        let mut changes = Changes::default();
        for event in events {
            if let Some(cue) = self.take_effect(event, &mut changes) {
                if !changes.cues.contains(&cue) {
                    changes.cues.push(cue);
                }
            }
        }
        let shown = if events.len() > MAX_LINES_PER_UPDATE {
            // Room for the summary line itself.
            let hidden = events.len() - (MAX_LINES_PER_UPDATE - 1);
            let time = clock(events[hidden].at);
            changes.new_lines.push(notice(
                &time,
                format!("({hidden} more lines arrived too fast to show; the latest follow)"),
            ));
            &events[hidden..]
        } else {
            events
        };
        let text = self.message_text;
        changes
            .new_lines
            .extend(shown.iter().map(|event| line(event, text)));
        changes
    }

    /// The server is on its way down (the window asked it to stop).
    pub fn stopping(&mut self) {
        self.state = RunState::Stopping;
    }

    /// Records that `lines` were appended to the log; returns how many bytes
    /// to cut from its front to keep [`MAX_LOG_LINES`]. Lines are counted
    /// with their newline.
    pub fn log_appended(&mut self, lines: &[LogLine]) -> usize {
        for line in lines {
            self.line_lengths.push_back(line.text().len() + 1);
        }
        let mut cut = 0;
        while self.line_lengths.len() > MAX_LOG_LINES {
            cut += self.line_lengths.pop_front().unwrap_or(0);
        }
        cut
    }

    /// How many lines the log holds.
    pub fn log_len(&self) -> usize {
        self.line_lengths.len()
    }

    /// Applies what an event changes besides the log; returns the sound it
    /// calls for.
    fn take_effect(&mut self, event: &Event, changes: &mut Changes) -> Option<Cue> {
        match &event.what {
            ServerEvent::Listening { addr, fingerprint } => {
                self.state = RunState::Running { addr: *addr };
                self.key = Some(*fingerprint);
                changes.state = true;
                None
            }
            ServerEvent::Stopped => {
                self.state = RunState::Stopped;
                self.rows.clear();
                self.selected = None;
                changes.state = true;
                changes.rows = true;
                None
            }
            ServerEvent::Joined {
                who,
                image_name,
                addr,
                identity,
                ..
            } => {
                self.add_row(who, image_name, *addr, *identity, &clock(event.at));
                changes.rows = true;
                Some(Cue::Joined)
            }
            ServerEvent::Left { who, .. } => {
                self.remove_row(&who.id);
                if self.selected.as_deref() == Some(&*who.id) {
                    self.selected = None;
                }
                changes.rows = true;
                Some(Cue::Left)
            }
            ServerEvent::Pictured { who, png } => {
                if let Some(row) = self.row_mut(&who.id) {
                    // Checked by the server already; checked again here
                    // because the view trusts nothing it did not decode.
                    // Only the wire's PNG check: the server has no use
                    // for the JPEG, GIF and BMP decoders (binary size).
                    row.picture = avatar::check_wire_picture(png).ok().map(Arc::new);
                    changes.rows = true;
                }
                None
            }
            ServerEvent::Refused {
                reason: LeaveReason::ClosedConnection | LeaveReason::SaidGoodbye,
                ..
            }
            | ServerEvent::Relayed { .. }
            | ServerEvent::Limited { .. }
            | ServerEvent::Discovery(_)
            | ServerEvent::Skipped { .. }
            | ServerEvent::Owner { .. }
            | ServerEvent::File { .. } => None,
            ServerEvent::Collapsed { .. } => Some(Cue::Error),
            ServerEvent::Refused { .. }
            | ServerEvent::Undeliverable { .. }
            | ServerEvent::Error { .. } => Some(Cue::Error),
        }
    }

    fn add_row(
        &mut self,
        who: &Party,
        image_name: &str,
        addr: SocketAddr,
        identity: Option<Fingerprint>,
        time: &str,
    ) {
        let order = id_order(&who.id);
        let row = ClientRow {
            order,
            id: who.id.to_string(),
            name: who.name.to_string(),
            color: color::for_display(&who.color),
            image_name: image_name.to_string(),
            picture: None,
            addr,
            joined: time.to_string(),
            identity,
        };
        let at = self.rows.partition_point(|r| r.order < order);
        self.rows.insert(at, row);
    }

    fn row_mut(&mut self, id: &str) -> Option<&mut ClientRow> {
        let order = id_order(id);
        let at = self.rows.partition_point(|r| r.order < order);
        self.rows.get_mut(at).filter(|r| r.id == id)
    }

    fn remove_row(&mut self, id: &str) {
        let order = id_order(id);
        let at = self.rows.partition_point(|r| r.order < order);
        if self.rows.get(at).is_some_and(|r| r.id == id) {
            self.rows.remove(at);
        }
    }

    /// The window title.
    pub fn title(&self) -> String {
        match &self.state {
            RunState::Running { addr } => {
                format!("HubChat Server - running on {}", self.shown_addr(*addr))
            }
            RunState::Stopping => "HubChat Server - stopping".into(),
            RunState::Stopped => "HubChat Server - stopped".into(),
        }
    }

    /// The status line: what clients should type, and how many are here.
    pub fn status(&self) -> String {
        match &self.state {
            RunState::Running { addr } => {
                let ip = self.shown_ip(*addr);
                let count = match self.rows.len() {
                    0 => "no clients connected yet".to_string(),
                    1 => "1 client connected".to_string(),
                    n => format!("{n} clients connected"),
                };
                format!("Clients connect to {ip}, port {}  ·  {count}", addr.port())
            }
            RunState::Stopping => "Stopping: telling every client the server is closing...".into(),
            RunState::Stopped => "Stopped. Choose an address and a port, then press Start.".into(),
        }
    }

    /// The address clients should type: the advertised LAN address when
    /// listening on all interfaces.
    fn shown_ip(&self, addr: SocketAddr) -> String {
        match (addr.ip().is_unspecified(), self.advertised) {
            (true, Some(ip)) => ip.to_string(),
            _ => addr.ip().to_string(),
        }
    }

    fn shown_addr(&self, addr: SocketAddr) -> String {
        let ip = self.shown_ip(addr);
        if ip.contains(':') {
            format!("[{ip}]:{}", addr.port())
        } else {
            format!("{ip}:{}", addr.port())
        }
    }
}

/// What the owner can do to a connected client, from its row's menu or
/// the buttons under the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAction {
    Kick,
    /// Ban its computer (its certificate), wherever it connects from.
    BanComputer,
    /// Ban everyone connecting from its address.
    BanAddress,
}

impl OwnerAction {
    /// Every action, in the row menu's order.
    pub const ALL: [OwnerAction; 3] = [
        OwnerAction::Kick,
        OwnerAction::BanComputer,
        OwnerAction::BanAddress,
    ];

    /// The menu entry.
    pub fn label(self) -> &'static str {
        match self {
            OwnerAction::Kick => "Kick...",
            OwnerAction::BanComputer => "Ban this computer...",
            OwnerAction::BanAddress => "Ban this address...",
        }
    }

    /// Whether it can be done to `row`: only an encrypted client has a
    /// computer (a certificate) to ban.
    pub fn possible(self, row: &ClientRow) -> bool {
        self != OwnerAction::BanComputer || row.identity.is_some()
    }

    /// What to ban by, for the bans.
    pub fn ban_by(self) -> Option<BanBy> {
        match self {
            OwnerAction::Kick => None,
            OwnerAction::BanComputer => Some(BanBy::Identity),
            OwnerAction::BanAddress => Some(BanBy::Address),
        }
    }

    /// The question asking for the reason, which the client is shown.
    pub fn prompt(self, row: &ClientRow) -> String {
        let name = printable(&row.name);
        let what = match self {
            OwnerAction::Kick => format!("Remove {name} from the server?"),
            OwnerAction::BanComputer => format!(
                "Ban {name}'s computer? It stays out, from any address, until you lift the ban."
            ),
            OwnerAction::BanAddress => format!(
                "Ban the address {}? Everyone connecting from it stays out until you lift \
                 the ban.",
                row.addr.ip().to_canonical()
            ),
        };
        format!("{what}\nReason (optional; {name} is shown it):")
    }
}

/// A row of the names list: the name, whose computer it belongs to, and
/// when that computer last used it.
pub fn binding_columns(binding: &Binding) -> [String; 3] {
    [
        printable(&binding.name),
        short_identity(&binding.identity),
        date(binding.last_used),
    ]
}

/// A row of the bans list: who was banned (the name they had, then the
/// computer or address), when, and the owner's reason (last, as it may be
/// long).
pub fn ban_columns(ban: &Ban) -> [String; 3] {
    let target = match &ban.target {
        BanTarget::Identity(hex) => format!("computer {}", short_identity(hex)),
        BanTarget::Address(ip) => format!("address {}", ip.to_canonical()),
    };
    let who = if ban.name.is_empty() {
        target
    } else {
        format!("{} - {target}", printable(&ban.name))
    };
    [who, date(ban.banned_at), printable(&ban.reason)]
}

/// A stored fingerprint in the short form the owner compares by eye.
fn short_identity(hex: &str) -> String {
    Fingerprint::from_hex(hex).map_or_else(|| hex.to_string(), |f| f.short())
}

/// Unix seconds as local `YYYY-MM-DD HH:MM`.
fn date(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .map(|t| t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// An event as a log line.
fn line(event: &Event, message_text: MessageText) -> LogLine {
    let time = clock(event.at);
    match &event.what {
        ServerEvent::Joined {
            who,
            addr,
            hubchat,
            identity,
            ..
        } => named(
            &time,
            who,
            Ink::Notice,
            joined_detail(who, *addr, *hubchat, identity.as_ref()),
        ),
        ServerEvent::Left { who, reason } => {
            let ink = if leaving_is_trouble(reason) {
                Ink::Error
            } else {
                Ink::Notice
            };
            named(&time, who, ink, format!(" ({}) left: {reason}", who.id))
        }
        ServerEvent::Relayed { from, to, text } => LogLine(vec![
            (Ink::Time, format!("{time}  ")),
            (
                Ink::Name(color::for_display(&from.color)),
                printable(&from.name),
            ),
            (Ink::Plain, " -> ".into()),
            (
                Ink::Name(color::for_display(&to.color)),
                printable(&to.name),
            ),
            (Ink::Plain, message_tail(text, message_text)),
        ]),
        // A connection that closed before joining (a port check, a client
        // that changed its mind) is no one's error.
        ServerEvent::Refused {
            reason: LeaveReason::ClosedConnection | LeaveReason::SaidGoodbye,
            ..
        } => notice(&time, describe(&event.what, message_text)),
        ServerEvent::Refused { .. }
        | ServerEvent::Undeliverable { .. }
        | ServerEvent::Error { .. } => {
            line_in(&time, Ink::Error, describe(&event.what, message_text))
        }
        ServerEvent::Limited { who, limit, count } => named(
            &time,
            who,
            Ink::Error,
            format!(
                " ({}) {}{}",
                who.id,
                printable(&limit.describe()),
                times_since(*count)
            ),
        ),
        ServerEvent::File {
            who,
            verb,
            file,
            rest,
        } => named(
            &time,
            who,
            Ink::Notice,
            format!(
                " ({}) {}",
                who.id,
                crate::server::log::file_sentence(verb, file.as_deref(), rest, message_text)
            ),
        ),
        ServerEvent::Pictured { who, .. } => named(
            &time,
            who,
            Ink::Notice,
            format!(" ({}) sent a custom avatar", who.id),
        ),
        ServerEvent::Listening { .. }
        | ServerEvent::Stopped
        | ServerEvent::Skipped { .. }
        | ServerEvent::Owner { .. } => notice(&time, describe(&event.what, message_text)),
        ServerEvent::Discovery(crate::common::discovery::Status::Answering { .. }) => {
            notice(&time, describe(&event.what, message_text))
        }
        ServerEvent::Discovery(crate::common::discovery::Status::Unavailable { .. }) => {
            line_in(&time, Ink::Error, describe(&event.what, message_text))
        }
        ServerEvent::Collapsed { .. } => {
            line_in(&time, Ink::Error, describe(&event.what, message_text))
        }
    }
}

/// Leaving for these reasons deserves the owner's attention.
fn leaving_is_trouble(reason: &LeaveReason) -> bool {
    matches!(
        reason,
        LeaveReason::StoppedReading
            | LeaveReason::Refused { .. }
            | LeaveReason::ConnectionLost { .. }
    )
}

fn id_order(id: &str) -> u64 {
    client_number(id).unwrap_or(u64::MAX)
}

fn clock(at: std::time::SystemTime) -> String {
    DateTime::<Local>::from(at).format("%H:%M:%S").to_string()
}

fn line_in(time: &str, ink: Ink, text: String) -> LogLine {
    LogLine(vec![(Ink::Time, format!("{time}  ")), (ink, text)])
}

fn notice(time: &str, text: String) -> LogLine {
    line_in(time, Ink::Notice, text)
}

fn named(time: &str, who: &Party, ink: Ink, rest: String) -> LogLine {
    LogLine(vec![
        (Ink::Time, format!("{time}  ")),
        (
            Ink::Name(color::for_display(&who.color)),
            printable(&who.name),
        ),
        (ink, rest),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn ev(what: ServerEvent) -> Event {
        Event {
            at: SystemTime::now(),
            what,
        }
    }

    fn party(k: u64, name: &str, color: &str) -> Party {
        Party {
            id: format!("client{k}").into(),
            name: name.into(),
            color: color.into(),
        }
    }

    fn joined(k: u64, name: &str) -> Event {
        ev(ServerEvent::Joined {
            who: party(k, name, "blue"),
            image_name: "image_2.png".into(),
            addr: format!("10.0.0.{k}:4000").parse().unwrap(),
            hubchat: false,
            identity: None,
        })
    }

    fn listening(addr: &str) -> Event {
        ev(ServerEvent::Listening {
            addr: addr.parse().unwrap(),
            fingerprint: crate::common::tls::Fingerprint::of(b"test"),
        })
    }

    #[test]
    fn rows_appear_on_join_and_vanish_on_leave_in_join_order() {
        let mut view = ServerView::new(None);
        let changes = view.apply(&[
            listening("0.0.0.0:5050"),
            joined(0, "alice"),
            joined(2, "carol"),
            joined(1, "bob"),
        ]);
        assert!(changes.rows);
        let names: Vec<&str> = view.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        view.apply(&[ev(ServerEvent::Left {
            who: party(1, "bob", "blue"),
            reason: LeaveReason::SaidGoodbye,
        })]);
        let names: Vec<&str> = view.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["alice", "carol"]);
        assert_eq!(view.rows[0].addr, "10.0.0.0:4000".parse().unwrap());
    }

    #[test]
    fn a_custom_avatar_shows_in_its_row_and_a_broken_one_keeps_the_builtin() {
        let mut view = ServerView::new(None);
        view.apply(&[
            listening("0.0.0.0:5050"),
            joined(0, "alice"),
            joined(1, "bob"),
        ]);
        let picture = avatar::Picture {
            rgba: [10, 200, 30, 255].repeat(48 * 48),
        };
        let changes = view.apply(&[
            ev(ServerEvent::Pictured {
                who: party(0, "alice", "blue"),
                png: avatar::encode_picture(&picture),
            }),
            ev(ServerEvent::Pictured {
                who: party(1, "bob", "blue"),
                png: b"not a picture".to_vec(),
            }),
        ]);
        assert!(changes.rows);
        assert_eq!(view.rows[0].picture.as_deref(), Some(&picture));
        assert_eq!(view.rows[1].picture, None, "bob keeps image_2");
        assert!(changes.new_lines[0]
            .text()
            .ends_with("alice (client0) sent a custom avatar"));
    }

    #[test]
    fn the_status_says_what_clients_should_type_and_how_many_are_here() {
        let mut view = ServerView::new(Some("192.168.1.20".parse().unwrap()));
        assert_eq!(
            view.status(),
            "Stopped. Choose an address and a port, then press Start."
        );
        assert_eq!(view.title(), "HubChat Server - stopped");
        view.apply(&[listening("0.0.0.0:5050")]);
        assert_eq!(
            view.status(),
            "Clients connect to 192.168.1.20, port 5050  ·  no clients connected yet"
        );
        assert_eq!(
            view.title(),
            "HubChat Server - running on 192.168.1.20:5050"
        );
        view.apply(&[joined(0, "alice"), joined(1, "bob")]);
        assert_eq!(
            view.status(),
            "Clients connect to 192.168.1.20, port 5050  ·  2 clients connected"
        );
    }

    #[test]
    fn a_specific_address_is_shown_as_it_is_with_ipv6_in_brackets() {
        let mut view = ServerView::new(Some("192.168.1.20".parse().unwrap()));
        view.apply(&[listening("[fd00::7]:6000")]);
        assert_eq!(view.title(), "HubChat Server - running on [fd00::7]:6000");
        assert!(view
            .status()
            .starts_with("Clients connect to fd00::7, port 6000"));
    }

    #[test]
    fn the_server_key_shows_once_started_and_stays_after_a_stop() {
        let mut view = ServerView::new(None);
        assert_eq!(view.key_text(), "(made at first Start)");
        view.apply(&[listening("127.0.0.1:5050")]);
        let key = Fingerprint::of(b"test");
        assert_eq!(view.key, Some(key));
        assert_eq!(view.key_text(), key.short());
        assert_eq!(view.key_text().len(), 24, "five groups of four");
        view.apply(&[ev(ServerEvent::Stopped)]);
        assert_eq!(view.key_text(), key.short(), "the next start uses it");
    }

    #[test]
    fn the_selection_follows_its_client_as_others_come_and_go_and_ends_when_it_leaves() {
        let mut view = ServerView::new(None);
        view.apply(&[
            listening("0.0.0.0:5050"),
            joined(1, "bob"),
            joined(2, "carol"),
        ]);
        view.select(1);
        assert_eq!(view.selected().map(|r| r.name.as_str()), Some("carol"));
        view.apply(&[joined(0, "alice")]);
        assert_eq!(view.selected_index(), Some(2), "carol moved down");
        view.apply(&[ev(ServerEvent::Left {
            who: party(1, "bob", "blue"),
            reason: LeaveReason::SaidGoodbye,
        })]);
        assert_eq!(view.selected().map(|r| r.name.as_str()), Some("carol"));
        view.apply(&[ev(ServerEvent::Left {
            who: party(2, "carol", "blue"),
            reason: LeaveReason::SaidGoodbye,
        })]);
        assert_eq!(view.selected(), None);
        view.select(7);
        assert_eq!(view.selected(), None, "no row there");
    }

    #[test]
    fn only_an_encrypted_client_can_be_banned_as_a_computer() {
        let mut view = ServerView::new(None);
        let identity = Fingerprint::of(b"alice's certificate");
        view.apply(&[
            listening("0.0.0.0:5050"),
            joined(0, "orig"),
            ev(ServerEvent::Joined {
                who: party(1, "alice", "red"),
                image_name: "image_2.png".into(),
                addr: "10.0.0.9:4000".parse().unwrap(),
                hubchat: true,
                identity: Some(identity),
            }),
        ]);
        let possible = |row: &ClientRow| -> Vec<OwnerAction> {
            OwnerAction::ALL
                .into_iter()
                .filter(|a| a.possible(row))
                .collect()
        };
        assert_eq!(
            possible(&view.rows[0]),
            [OwnerAction::Kick, OwnerAction::BanAddress]
        );
        assert_eq!(possible(&view.rows[1]), OwnerAction::ALL);
        assert_eq!(view.rows[1].identity, Some(identity));
        assert_eq!(OwnerAction::BanComputer.ban_by(), Some(BanBy::Identity));
        assert_eq!(OwnerAction::Kick.ban_by(), None);
        let prompt = OwnerAction::BanAddress.prompt(&view.rows[1]);
        assert!(prompt.starts_with("Ban the address 10.0.0.9?"), "{prompt}");
        assert!(prompt.ends_with("Reason (optional; alice is shown it):"));
    }

    #[test]
    fn names_and_bans_are_listed_with_short_identities_and_dates() {
        let identity = Fingerprint::of(b"alice's certificate");
        let binding = Binding {
            name: "alice".into(),
            identity: identity.hex(),
            bound_at: 0,
            last_used: 1_700_000_000,
        };
        let [name, computer, used] = binding_columns(&binding);
        assert_eq!((name.as_str(), computer), ("alice", identity.short()));
        assert_eq!(used.len(), "2023-11-14 22:13".len(), "{used}");
        let ban = Ban {
            target: BanTarget::Address("::ffff:10.0.0.9".parse().unwrap()),
            name: "mallory".into(),
            reason: "spam".into(),
            banned_at: 1_700_000_000,
        };
        let [who, _, reason] = ban_columns(&ban);
        assert_eq!(who, "mallory - address 10.0.0.9");
        assert_eq!(reason, "spam");
        let ban = Ban {
            target: BanTarget::Identity(identity.hex()),
            name: String::new(),
            reason: String::new(),
            banned_at: 0,
        };
        assert_eq!(
            ban_columns(&ban)[0],
            format!("computer {}", identity.short())
        );
    }

    #[test]
    fn owner_actions_are_logged_as_notices() {
        let mut view = ServerView::new(None);
        let changes = view.apply(&[ev(ServerEvent::Owner {
            what: "kicked alice (client0): spam".into(),
        })]);
        let line = &changes.new_lines[0];
        assert!(line
            .text()
            .ends_with("the owner kicked alice (client0): spam"));
        assert_eq!(line.0[1].0, Ink::Notice);
    }

    #[test]
    fn stopping_clears_the_rows() {
        let mut view = ServerView::new(None);
        view.apply(&[listening("127.0.0.1:5050"), joined(0, "alice")]);
        view.stopping();
        assert_eq!(view.title(), "HubChat Server - stopping");
        view.apply(&[ev(ServerEvent::Stopped)]);
        assert!(view.rows.is_empty());
        assert_eq!(view.state, RunState::Stopped);
    }

    #[test]
    fn a_relayed_message_is_logged_with_names_in_their_colours() {
        let mut view = ServerView::new(None);
        let changes = view.apply(&[ev(ServerEvent::Relayed {
            from: party(0, "alice", "red"),
            to: party(1, "bob", "tan"),
            text: "hi\nthere\n".into(),
        })]);
        let line = &changes.new_lines[0];
        assert!(
            line.text().ends_with("alice -> bob: hi⏎there"),
            "{}",
            line.text()
        );
        assert_eq!(
            line.0[1],
            (Ink::Name(color::for_display("red")), "alice".into())
        );
        assert_eq!(line.0[3].0, Ink::Name(color::for_display("tan")));
    }

    #[test]
    fn hidden_message_text_is_logged_as_a_count_of_characters() {
        let mut view = ServerView::new(None);
        view.message_text = MessageText::Hidden;
        let changes = view.apply(&[ev(ServerEvent::Relayed {
            from: party(0, "alice", "red"),
            to: party(1, "bob", "tan"),
            text: "Zoë, the key is under the mat\n".into(),
        })]);
        let line = changes.new_lines[0].text();
        assert!(line.ends_with("alice -> bob (29 characters)"), "{line}");
        assert!(!line.contains("mat"), "{line}");
    }

    #[test]
    fn errors_stand_out_and_each_sound_plays_once_per_batch() {
        let mut view = ServerView::new(None);
        let refused = ev(ServerEvent::Refused {
            addr: "10.0.0.9:1".parse().unwrap(),
            name: Some("alice".into()),
            reason: LeaveReason::Refused {
                code: crate::common::packet::ErrorCode::NameTaken,
                detail: "taken".into(),
            },
        });
        let changes = view.apply(&[joined(0, "a"), joined(1, "b"), refused.clone(), refused]);
        assert_eq!(changes.cues, [Cue::Joined, Cue::Error]);
        assert_eq!(changes.new_lines[2].0[1].0, Ink::Error);
    }

    #[test]
    fn a_flood_shows_its_latest_lines_and_counts_the_rest() {
        let mut view = ServerView::new(None);
        let batch: Vec<Event> = (0..1000)
            .map(|i| {
                ev(ServerEvent::Relayed {
                    from: party(0, "a", "red"),
                    to: party(1, "b", "red"),
                    text: format!("m{i}"),
                })
            })
            .collect();
        let changes = view.apply(&batch);
        assert_eq!(changes.new_lines.len(), MAX_LINES_PER_UPDATE);
        assert!(changes.new_lines[0]
            .text()
            .contains("(701 more lines arrived too fast to show"));
        assert!(changes
            .new_lines
            .last()
            .unwrap()
            .text()
            .ends_with("a -> b: m999"));
    }

    #[test]
    fn the_log_keeps_the_last_lines_and_says_how_much_to_cut() {
        let mut view = ServerView::new(None);
        let line = LogLine(vec![(Ink::Plain, "x".repeat(9))]);
        let batch = vec![line; MAX_LOG_LINES + 3];
        assert_eq!(view.log_appended(&batch), 3 * 10);
        assert_eq!(view.log_len(), MAX_LOG_LINES);
    }
}
