//! The client's life with servers, without any GUI: connecting (on a worker
//! thread, cancellable), the session while it lasts, losing it, and
//! disconnecting, over one [`ClientModel`] that outlives every session.
//!
//! The window owns one `Controller` and feeds it what the worker threads
//! report ([`Input`], through the window's single message channel) and what
//! the user does; each call returns a [`Change`] saying what to redraw.
//! Keeping this below the GUI means a reconnect is one code path, tested
//! headless against a real server, and conversations (keyed by partner
//! name) survive it. Reconnecting by itself after a loss is driven from
//! here too: the schedule is [`Reconnect`]'s, and the window calls
//! [`Controller::tick`] when it is due (see "Reconnecting by itself" below).
//!
//! Every connection attempt gets a number. Whatever a worker reports is
//! tagged with the attempt it belongs to, and reports from an attempt that
//! was cancelled or has ended are ignored, so a late answer can never touch
//! the current session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{Local, TimeZone};

use crate::client::files::{Recipient, TransferKey};
use crate::client::history::{History, Hit, Partner, State, StoredLine};
use crate::client::model::{Author, ClientModel, Face, Line, Mark, Update, EVERYONE_KEY};
use crate::client::reconnect::{Loss, Reconnect};
use crate::client::session::{
    ConnectError, Encryption, ServerKind, Session, SessionConfig, SessionEvent,
};
use crate::client::trust::KnownServers;
use crate::common::avatar::Picture;
use crate::common::packet::{ChatTarget, ErrorCode, Profile};
use crate::common::tls::Fingerprint;
use crate::server::hub::EVERYONE_PREFIX;

/// What worker threads report, tagged with their connection attempt.
pub enum Input {
    /// The attempt ended: joined, or why not.
    Joined {
        attempt: u64,
        result: Result<Session, ConnectError>,
    },
    /// Something happened on the attempt's session.
    Event { attempt: u64, event: SessionEvent },
}

/// Where the client stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not connected, and nothing went wrong (never connected, or the user
    /// disconnected or cancelled).
    Offline,
    /// A connection attempt is under way.
    Connecting { server: String },
    /// Joined.
    Connected {
        server: String,
        name: String,
        kind: ServerKind,
        /// Encrypted, with the server's key; or plain text (an original
        /// server), which the window marks "Not encrypted".
        encryption: Encryption,
    },
    /// The connection ended without the user asking: the server stopped,
    /// the network failed. `reason` is for the user.
    Lost { reason: String },
}

impl Status {
    /// Whether the form may be edited and Connect pressed.
    pub fn idle(&self) -> bool {
        matches!(self, Status::Offline | Status::Lost { .. })
    }
}

/// What a call changed, for the window to redraw.
#[derive(Debug, Default)]
pub struct Change {
    /// What changed in the model.
    pub update: Update,
    /// Lines for the status log, in order.
    pub log: Vec<String>,
    /// The status changed: the form, buttons, title and banner follow it.
    pub status: bool,
    /// A connection attempt failed: the form shows why.
    pub failed: Option<ConnectError>,
    /// The known servers changed (a key pinned, a password remembered or
    /// forgotten): the window saves them.
    pub known: bool,
}

impl Change {
    fn merge(&mut self, update: Update) {
        self.update.list |= update.list;
        self.update.conversations.extend(update.conversations);
        if update.incoming.is_some() {
            self.update.incoming = update.incoming;
        }
        if update.lost.is_some() {
            self.update.lost = update.lost;
        }
    }
}

/// Who we are to the server: what the form said, for the headers.
#[derive(Debug, Clone)]
pub struct Identity {
    pub profile: Profile,
    /// Our custom picture, shown as ours only where HubChat peers see it.
    pub picture: Option<Arc<Picture>>,
}

/// Reports from worker threads go here; the window's channel, in practice.
pub type Notify = Arc<dyn Fn(Input) + Send + Sync>;

pub struct Controller {
    pub model: ClientModel,
    status: Status,
    session: Option<Session>,
    /// The current attempt; reports of any other are stale.
    attempt: u64,
    /// Events of the current attempt that came before it joined (the first
    /// roster travels ahead of the join's own report).
    early: Vec<SessionEvent>,
    identity: Option<Identity>,
    notify: Notify,
    /// The servers' pinned keys and remembered passwords. The window loads
    /// them at start and saves them whenever a [`Change`] says so.
    pub known: KnownServers,
    /// The last attempt's settings, to try again with a password or after
    /// the user accepted a server's new key.
    last: Option<SessionConfig>,
    /// Whether the password of the attempt under way is to be remembered
    /// once it proves right.
    remember_password: bool,
    /// Why the last attempt failed, if it did.
    failure: Option<ConnectError>,
    /// The last refusal the server sent on this session: when a kick or a
    /// ban follows, it is the reason the connection ended.
    refusal: Option<String>,
    /// When the partner was last told the user is typing.
    typed_at: Option<Instant>,
    /// Reconnecting by itself after a loss: when to try next, or nothing.
    reconnect: Reconnect,
    /// Every conversation, kept (in the settings folder, or for this run
    /// only when the user keeps no history): also how a message that comes
    /// twice, even across restarts, is shown once.
    history: Option<Arc<History>>,
    /// The server whose conversations the model holds ([`history_key`]).
    history_server: Option<String>,
    /// Where accepted files go, when not the user's Downloads folder.
    downloads: Option<PathBuf>,
}

/// How many of a conversation's last lines come back from the history
/// when the program starts (a search goes further back).
pub const HISTORY_SHOWN: usize = 500;

/// How many search hits are shown: the newest.
pub const SEARCH_HITS: usize = 200;
/// Lines shown before a search hit, for context.
const HIT_CONTEXT: usize = 20;
/// Lines after a hit, at most: all of them up to the end, in practice.
const HIT_AFTER: usize = 20_000;

/// A line for the history.
enum KeptLine<'a> {
    Mine {
        id: &'a str,
        text: &'a str,
    },
    Theirs {
        id: Option<&'a str>,
        author: &'a str,
        text: &'a str,
        at: i64,
    },
}

/// Which server a conversation belongs to, for the history: the server's
/// key when the connection is encrypted (it stays the same server at
/// another address), else its address and port (an original server).
pub fn history_key(host: &str, port: u16, key: Option<Fingerprint>) -> String {
    match key {
        Some(fingerprint) => format!("tls:{}", fingerprint.hex()),
        None => format!("addr:{}:{port}", host.trim().to_lowercase()),
    }
}

fn encryption_fingerprint(encryption: Encryption) -> Option<Fingerprint> {
    match encryption {
        Encryption::Encrypted { server } => Some(server),
        Encryption::NotEncrypted => None,
    }
}

/// A line of the history as the model shows it.
pub fn line_from(key: &str, stored: StoredLine) -> Line {
    let author = if stored.mine {
        Author::Me
    } else if key == EVERYONE_KEY {
        Author::Member(stored.author)
    } else {
        Author::Partner
    };
    let mark = stored.mine.then(|| mark_of(stored.state, stored.detail));
    Line {
        author,
        text: stored.text,
        at: Local
            .timestamp_millis_opt(stored.at_ms)
            .single()
            .unwrap_or_else(Local::now),
        id: stored.msg_id,
        mark,
    }
}

fn mark_of(state: State, detail: String) -> Mark {
    match state {
        State::Sending => Mark::Sending,
        State::Sent | State::Received => Mark::Sent,
        State::Kept => Mark::Kept,
        State::Delivered => Mark::Delivered,
        State::Read => Mark::Read,
        State::Failed => Mark::Failed(detail),
    }
}

fn state_of(mark: &Mark) -> (State, &str) {
    match mark {
        Mark::Sending => (State::Sending, ""),
        Mark::Sent => (State::Sent, ""),
        Mark::Kept => (State::Kept, ""),
        Mark::Delivered => (State::Delivered, ""),
        Mark::Read => (State::Read, ""),
        Mark::Failed(why) => (State::Failed, why.as_str()),
    }
}

fn now_ms() -> i64 {
    Local::now().timestamp_millis()
}

/// How often, at most, a partner is told the user is typing.
pub const TYPING_EVERY: Duration = Duration::from_secs(3);

/// A new message id: 16 random bytes in hex. Ids only need to be unique
/// among one sender's messages, and random ones stay so across restarts
/// and installations without keeping a counter anywhere.
pub fn new_message_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        // No system randomness (it does not happen on any supported
        // system): the time and a counter are unique enough.
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{t:x}-{n:x}");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Controller {
    /// A controller whose worker threads report through `notify`.
    pub fn new(notify: Notify) -> Self {
        Controller {
            model: ClientModel::default(),
            status: Status::Offline,
            session: None,
            attempt: 0,
            early: Vec::new(),
            identity: None,
            notify,
            known: KnownServers::default(),
            last: None,
            remember_password: false,
            failure: None,
            refusal: None,
            typed_at: None,
            reconnect: Reconnect::default(),
            history: History::open_in_memory().ok().map(Arc::new),
            history_server: None,
            downloads: None,
        }
    }

    /// A controller that keeps conversations in `history`.
    pub fn with_history(notify: Notify, history: Arc<History>) -> Self {
        let mut controller = Controller::new(notify);
        controller.history = Some(history);
        controller
    }

    /// The history conversations are kept in.
    pub fn history(&self) -> Option<&Arc<History>> {
        self.history.as_ref()
    }

    /// Keeps conversations in `history` from now on (the user turned
    /// keeping history on or off).
    pub fn set_history(&mut self, history: Arc<History>) {
        self.history = Some(history);
    }

    /// Puts the conversations kept for `server` ([`history_key`]) back in
    /// the model, each with its last lines; returns the keys restored. The
    /// window calls it at start for the remembered server; a join calls it
    /// for the server joined.
    pub fn load_history(&mut self, server: &str) -> Vec<String> {
        self.history_server = Some(server.to_string());
        let Some(history) = self.history.clone() else {
            return Vec::new();
        };
        let mut restored = Vec::new();
        for summary in history.conversations(server).unwrap_or_default() {
            let key = summary.conv.clone();
            if self.model.conversations.contains_key(&key) {
                continue;
            }
            let stored = history
                .recent(server, &key, HISTORY_SHOWN)
                .unwrap_or_default();
            let partner = Profile {
                name: summary.partner.name.clone(),
                color: summary.partner.color.clone(),
                image_name: summary.partner.image_name.clone(),
                files: false,
            };
            let lines = stored.into_iter().map(|l| line_from(&key, l)).collect();
            self.model.restore(&key, &partner, lines);
            restored.push(key);
        }
        restored
    }

    /// Finds `typed` in the history of every server, newest first.
    pub fn search(&self, typed: &str) -> Vec<Hit> {
        self.history
            .as_ref()
            .and_then(|h| h.search(None, typed, SEARCH_HITS).ok())
            .unwrap_or_default()
    }

    /// Shows a search hit in its conversation: the conversation's lines
    /// become those from a little before the hit to the end, and the
    /// hit's place among them is returned with the conversation's key. A
    /// hit from another server's history than the one shown is opened from
    /// that server's history.
    pub fn show_hit(&mut self, hit: &Hit) -> Option<(String, usize)> {
        let history = self.history.clone()?;
        if self.history_server.as_deref() != Some(hit.server.as_str()) && !self.model.connected() {
            self.model.conversations.clear();
            self.load_history(&hit.server);
        }
        let stored = history.around(hit.row, HIT_CONTEXT, HIT_AFTER).ok()?;
        let at = stored.iter().position(|l| l.row == hit.row)?;
        if !self.model.conversations.contains_key(&hit.conv) {
            if hit.conv == EVERYONE_KEY {
                self.model.open_room();
            } else {
                let partner = Profile {
                    name: hit.partner_name.clone(),
                    color: "gray".into(),
                    image_name: "image_1.png".into(),
                    files: false,
                };
                self.model.restore(&hit.conv, &partner, Vec::new());
            }
        }
        let lines = stored
            .into_iter()
            .map(|l| line_from(&hit.conv, l))
            .collect();
        self.model.replace_lines(&hit.conv, lines, Some(at));
        Some((hit.conv.clone(), at))
    }

    /// Forgets what was said in conversation `key`, on screen and on disk.
    pub fn clear_history(&mut self, key: &str) {
        if let (Some(history), Some(server)) = (&self.history, &self.history_server) {
            let _ = history.clear(server, key);
        }
        self.model.clear(key);
    }

    /// The history's key for the server now joined or last chosen.
    pub fn history_server(&self) -> Option<&str> {
        self.history_server.as_deref()
    }

    /// Keeps a line in the history (errors are not the conversation's
    /// business: the line is on screen either way).
    fn keep_line(&self, key: &str, line: KeptLine) {
        let (Some(history), Some(server)) = (&self.history, &self.history_server) else {
            return;
        };
        let partner = self
            .model
            .conversations
            .get(key)
            .map(|c| Partner {
                name: c.face.name.clone(),
                color: c.face.color.to_string(),
                image_name: c.face.image_name.clone(),
            })
            .unwrap_or_default();
        let _ = match line {
            KeptLine::Mine { id, text } => history
                .add_outgoing(server, key, &partner, id, &self.my_name(), text, now_ms())
                .map(drop),
            KeptLine::Theirs {
                id,
                author,
                text,
                at,
            } => history
                .add_incoming(server, key, &partner, id, author, text, at)
                .map(drop),
        };
    }

    fn my_name(&self) -> String {
        self.model
            .own
            .as_ref()
            .map(|o| o.name.clone())
            .or_else(|| self.identity.as_ref().map(|i| i.profile.name.clone()))
            .unwrap_or_default()
    }

    /// Notes a mark in the history too.
    fn keep_mark(&self, id: &str, mark: &Mark) {
        let (Some(history), Some(server)) = (&self.history, &self.history_server) else {
            return;
        };
        let (state, detail) = state_of(mark);
        let _ = history.set_state(server, id, state, detail);
    }

    /// Before a message from a HubChat peer is shown: whether the history
    /// already has it (delivered again after a crash on either side).
    fn seen_before(&self, key: &str, author: &str, id: &str, text: &str, at: i64) -> bool {
        let (Some(history), Some(server)) = (&self.history, &self.history_server) else {
            return false;
        };
        let partner = Partner {
            name: if key == EVERYONE_KEY {
                "Everyone".into()
            } else {
                author.to_string()
            },
            ..self.partner_of(key, author)
        };
        matches!(
            history.add_incoming(server, key, &partner, Some(id), author, text, at),
            Ok(None)
        )
    }

    fn partner_of(&self, key: &str, author: &str) -> Partner {
        if let Some(c) = self.model.conversations.get(key) {
            return Partner {
                name: c.face.name.clone(),
                color: c.face.color.to_string(),
                image_name: c.face.image_name.clone(),
            };
        }
        let listed = self
            .model
            .contacts
            .iter()
            .chain(&self.model.away)
            .find(|c| ClientModel::key(&c.profile.name) == ClientModel::key(author));
        match listed {
            Some(c) => Partner {
                name: c.profile.name.clone(),
                color: c.profile.color.clone(),
                image_name: c.profile.image_name.clone(),
            },
            None => Partner {
                name: author.to_string(),
                color: "gray".into(),
                image_name: "image_1.png".into(),
            },
        }
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The joined session, if any.
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Starts connecting on a worker thread; does nothing unless idle. The
    /// server's pinned key and a remembered password come from
    /// [`Controller::known`].
    pub fn connect(&mut self, mut config: SessionConfig, identity: Identity) -> Change {
        if !self.status.idle() {
            return Change::default();
        }
        self.reconnect.stop(); // connecting (elsewhere, perhaps) ends any loop
        config.pin = self.known.pin(&config.host, config.port);
        if config.password.is_none() {
            config.password = self.known.password(&config.host, config.port);
        }
        self.remember_password = false;
        self.identity = Some(identity);
        self.start(config)
    }

    /// Tries the last server again with a password the user typed; it is
    /// remembered for that server once it proves right, if `remember`.
    pub fn retry_with_password(&mut self, password: String, remember: bool) -> Change {
        let Some(mut config) = self.last.clone().filter(|_| self.status.idle()) else {
            return Change::default();
        };
        config.password = Some(password);
        let change = self.start(config);
        self.remember_password = remember;
        change
    }

    /// The user deliberately accepted what the last attempt refused: a
    /// server's new key is pinned in place of the old one, or a server that
    /// stopped encrypting is forgotten. Then it connects again. Does
    /// nothing unless the last attempt failed for one of those reasons.
    pub fn accept_server_change(&mut self) -> Change {
        let Some(mut config) = self.last.clone().filter(|_| self.status.idle()) else {
            return Change::default();
        };
        let (host, port) = (config.host.clone(), config.port);
        let mut change = match self.failure.take() {
            Some(ConnectError::KeyChanged { offered, .. }) => {
                self.known.trust(&host, port, offered);
                config.pin = Some(offered);
                self.start(config)
            }
            Some(ConnectError::NotEncrypted { .. }) => {
                self.known.forget_key(&host, port);
                config.pin = None;
                self.start(config)
            }
            other => {
                self.failure = other;
                return Change::default();
            }
        };
        change.known = true;
        change
    }

    /// Why the last attempt failed, while the client is idle after it.
    pub fn failure(&self) -> Option<&ConnectError> {
        self.failure.as_ref()
    }

    fn start(&mut self, config: SessionConfig) -> Change {
        let mut change = Change::default();
        self.attempt += 1;
        self.early.clear();
        self.failure = None;
        self.refusal = None;
        self.last = Some(config.clone());
        let server = server_name(&config.host, config.port);
        change.log.push(format!("Connecting to {server}..."));
        self.set_status(
            Status::Connecting {
                server: server.clone(),
            },
            &mut change,
        );
        let attempt = self.attempt;
        let notify = self.notify.clone();
        thread::spawn(move || {
            let events = notify.clone();
            let result = Session::connect(&config, move |event| {
                events(Input::Event { attempt, event })
            });
            notify(Input::Joined { attempt, result });
        });
        change
    }

    /// Gives up the attempt under way. Its thread finishes on its own; if
    /// it joins after all, that session is closed at once.
    pub fn cancel(&mut self) -> Change {
        let mut change = Change::default();
        if let Status::Connecting { .. } = self.status {
            self.attempt += 1;
            self.early.clear();
            change.log.push(self.stop_reconnecting("Cancelled."));
            self.set_status(Status::Offline, &mut change);
        }
        change
    }

    /// Leaves the server (the user asked).
    pub fn disconnect(&mut self) -> Change {
        let mut change = Change::default();
        let Some(session) = self.session.take() else {
            return self.disconnect_while_reconnecting();
        };
        self.attempt += 1; // what the reader says while closing is stale
        session.disconnect();
        change.merge(self.model.apply(SessionEvent::Lost {
            reason: "you disconnected.".into(),
        }));
        change.update.lost = None;
        change.log.push("Disconnected.".into());
        self.set_status(Status::Offline, &mut change);
        change
    }

    /// Applies what a worker thread reported.
    pub fn handle(&mut self, input: Input) -> Change {
        let mut change = Change::default();
        match input {
            Input::Joined { attempt, result } if attempt == self.attempt => {
                self.joined(result, &mut change)
            }
            Input::Event { attempt, event } if attempt == self.attempt => {
                if self.session.is_some() {
                    self.event(event, &mut change);
                } else if let Status::Connecting { .. } = self.status {
                    self.early.push(event);
                }
            }
            // A cancelled attempt that joined after all: leave at once.
            Input::Joined {
                result: Ok(session),
                ..
            } => session.disconnect(),
            Input::Joined { .. } | Input::Event { .. } => {}
        }
        change
    }

    /// Sends what the user wrote in conversation `key`. A text longer than
    /// the server relays is not sent: it stays with the user (the window
    /// keeps it in the input) and the conversation says why.
    ///
    /// While there is no connection the message waits, marked as sending,
    /// and goes out after the next join, in order, once.
    pub fn say(&mut self, key: &str, text: &str) -> Said {
        let limit = self
            .session
            .as_ref()
            .and_then(Session::max_message)
            .filter(|&l| text.len() > l);
        if let (Some(limit), false) = (limit, text.trim().is_empty()) {
            self.model.note(key, too_long(text.len(), limit));
            return Said::TooLong { limit };
        }
        let id = new_message_id();
        if !self.model.say(key, text, &id) {
            return Said::Nothing;
        }
        self.keep_line(key, KeptLine::Mine { id: &id, text });
        self.typed_at = None;
        self.transmit(key, &id, text);
        Said::Sent
    }

    /// Puts one of our messages on the wire, as this server understands
    /// it: CHAT by name or to the room (version 3, which confirms), else
    /// MESSAGE to the partner's id. Without a session it waits.
    fn transmit(&mut self, key: &str, id: &str, text: &str) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let Some(c) = self.model.conversations.get(key) else {
            return;
        };
        if session.speaks_chat() {
            let to = if c.room {
                ChatTarget::Everyone
            } else {
                ChatTarget::Person(c.partner.clone())
            };
            session.chat(id, to, text);
            return;
        }
        let mark = if c.room {
            // No rooms here: the room is everyone in the list, each told
            // as the room's messages reach original clients.
            let text = format!("{EVERYONE_PREFIX}{text}");
            for other in self.model.contacts.iter().filter(|o| !o.is_me) {
                session.send(&other.id, &text);
            }
            Mark::Sent
        } else if let Some(to) = &c.partner_id {
            session.send(to, text);
            Mark::Sent
        } else {
            Mark::Failed(format!(
                "{} is not here, and this server cannot keep messages for people who are away.",
                c.partner
            ))
        };
        self.keep_mark(id, &mark);
        self.model.set_mark(id, mark);
    }

    /// Saves accepted files in `dir` rather than the Downloads folder.
    pub fn set_downloads(&mut self, dir: PathBuf) {
        if let Some(files) = self.session.as_ref().and_then(Session::files) {
            files.set_downloads(dir.clone());
        }
        self.downloads = Some(dir);
    }

    /// Whether a file can be sent in conversation `key` now; if not, why,
    /// in a sentence for the button's tooltip.
    pub fn can_send_file(&self, key: &str) -> Result<(), String> {
        let Some(session) = self.session.as_ref() else {
            return Err("Connect to a server to send files.".into());
        };
        if session.files().is_none() {
            return Err(
                "This server does not pass files on (its owner switched them off, or it is the \
                 original messenger or an older HubChat)."
                    .into(),
            );
        }
        let Some(c) = self.model.conversations.get(key) else {
            return Err("This conversation is closed.".into());
        };
        if c.room {
            return Ok(());
        }
        let Some(id) = &c.partner_id else {
            return Err(format!(
                "{} is away; files go only to people who are here.",
                c.partner
            ));
        };
        match self.model.contact(id) {
            Some(contact) if contact.profile.files => Ok(()),
            _ => Err(format!(
                "{}'s program cannot receive files (it is the original messenger or an older \
                 HubChat).",
                c.partner
            )),
        }
    }

    /// The largest file the server passes on, if it passes files on.
    pub fn max_file(&self) -> Option<u64> {
        self.session.as_ref()?.files().map(|f| f.max_file())
    }

    /// Offers the file at `path` in conversation `key` (to its partner, or
    /// to everyone in the room). What goes wrong is said in the
    /// conversation, and returned.
    pub fn send_file(&mut self, key: &str, path: &Path) -> Result<(), String> {
        let result = self.can_send_file(key).and_then(|()| {
            let files = self
                .session
                .as_ref()
                .and_then(Session::files)
                .ok_or_else(|| "No server.".to_string())?;
            let c = self
                .model
                .conversations
                .get(key)
                .ok_or_else(|| "This conversation is closed.".to_string())?;
            let to = match (&c.partner_id, c.room) {
                (_, true) => Recipient::Everyone,
                (Some(id), false) => Recipient::Client(id.clone()),
                (None, false) => return Err(format!("{} is away.", c.partner)),
            };
            let offered = files.offer(to, path).map_err(|e| e.0)?;
            self.model
                .offered_file(key, &offered.transfer, &offered.name, offered.size);
            Ok(())
        });
        if let Err(why) = &result {
            self.model.note(key, why.clone());
        }
        result
    }

    /// Accepts a file offered in conversation `key`.
    pub fn accept_file(&mut self, key: &str, transfer: &TransferKey) {
        let Some(files) = self.session.as_ref().and_then(Session::files) else {
            return;
        };
        if let Err(why) = files.accept(&transfer.peer, &transfer.transfer) {
            self.model.note(key, why);
            return;
        }
        self.model.file_started(transfer);
    }

    /// Declines a file offered in conversation `key`.
    pub fn decline_file(&mut self, key: &str, transfer: &TransferKey) {
        if let Some(files) = self.session.as_ref().and_then(Session::files) {
            files.decline(&transfer.peer, &transfer.transfer);
        }
        self.model.file_declined(key, transfer);
    }

    /// Stops a transfer either way; the other side is told.
    pub fn cancel_file(&mut self, transfer: &TransferKey) {
        if let Some(files) = self.session.as_ref().and_then(Session::files) {
            files.cancel(transfer);
        }
    }

    /// The user typed in conversation `key`: the partner hears so, at most
    /// every 3 seconds (HubChat servers of version 3 only).
    pub fn typing(&mut self, key: &str) {
        let Some(session) = self.session.as_ref().filter(|s| s.speaks_chat()) else {
            return;
        };
        let Some(c) = self.model.conversations.get(key).filter(|c| !c.room) else {
            return;
        };
        let now = Instant::now();
        if c.partner_id.is_none() || self.typed_at.is_some_and(|t| now < t + TYPING_EVERY) {
            return;
        }
        self.typed_at = Some(now);
        session.typing(&c.partner, true);
    }

    /// Sends the receipts the model has gathered (messages received, or
    /// read now that the user looks), while connected to a server that
    /// takes them; they wait otherwise.
    pub fn send_receipts(&mut self) {
        let Some(session) = self.session.as_ref().filter(|s| s.speaks_chat()) else {
            return;
        };
        for (id, name, state) in self.model.receipts.drain(..) {
            session.receipt(&id, &name, state);
        }
    }

    /// After a join: what was written while disconnected, or never
    /// confirmed, goes out now, oldest first (the server and the
    /// recipient drop a message they already have).
    fn send_unsent(&mut self, change: &mut Change) {
        for (key, id, text) in self.model.unsent() {
            self.transmit(&key, &id, &text);
            change.update.conversations.push(key);
        }
    }

    fn joined(&mut self, result: Result<Session, ConnectError>, change: &mut Change) {
        let server = match &self.status {
            Status::Connecting { server } => server.clone(),
            _ => String::new(),
        };
        let session = match result {
            Ok(session) => session,
            Err(e) => {
                self.early.clear();
                if self.try_failed(&e, change) {
                    return;
                }
                self.forget_wrong_password(&e, change);
                change.log.push(format!("Could not connect: {e}"));
                self.failure = Some(e.clone());
                change.failed = Some(e);
                self.set_status(Status::Offline, change);
                return;
            }
        };
        let identity = self.identity.clone();
        let name = identity
            .as_ref()
            .map_or_else(String::new, |i| i.profile.name.clone());
        let hubchat = matches!(session.kind, ServerKind::HubChat { .. });
        let own = identity.as_ref().map(|i| {
            // Only HubChat peers see our own picture; elsewhere we are
            // shown with the built-in one.
            let picture = if hubchat { i.picture.clone() } else { None };
            Face::of(&i.profile, picture)
        });
        let note = match session.kind {
            ServerKind::HubChat { .. } => "",
            ServerKind::Original => {
                " It is an original messenger server: your own picture is not shared there."
            }
        };
        change
            .log
            .push(format!("Connected to {server} as {name}.{note}"));
        let encryption = session.encryption;
        change.log.push(match encryption {
            Encryption::Encrypted { server } => {
                format!("The connection is encrypted. The server's key is {server}.")
            }
            Encryption::NotEncrypted => {
                "Not encrypted: anyone on the network can read what is sent.".into()
            }
        });
        self.keep_trust(encryption, change);
        self.reconnect.joined();
        self.model.begin(&session.id, own);
        if let Some(config) = &self.last {
            let key = history_key(
                &config.host,
                config.port,
                encryption_fingerprint(encryption),
            );
            if self.history_server.as_deref() != Some(key.as_str()) {
                for restored in self.load_history(&key) {
                    change.update.conversations.push(restored);
                }
                change.update.list = true;
            }
        }
        let me = session.id.clone();
        let kind = session.kind;
        if let (Some(files), Some(dir)) = (session.files(), &self.downloads) {
            files.set_downloads(dir.clone());
        }
        self.session = Some(session);
        self.set_status(
            Status::Connected {
                server,
                name,
                kind,
                encryption,
            },
            change,
        );
        for event in std::mem::take(&mut self.early) {
            self.event(event, change);
        }
        self.send_unsent(change);
        self.send_receipts();
        // The server does not send us our own picture back.
        if let (true, Some(picture)) = (hubchat, identity.and_then(|i| i.picture)) {
            let picture = (*picture).clone();
            self.event(SessionEvent::Picture { id: me, picture }, change);
        }
    }

    /// After a join: pins the server's key the first time it is seen, and
    /// remembers a password that proved right if the user asked.
    fn keep_trust(&mut self, encryption: Encryption, change: &mut Change) {
        let Some(config) = &self.last else { return };
        let (host, port) = (config.host.as_str(), config.port);
        if let (Encryption::Encrypted { server }, None) = (encryption, config.pin) {
            self.known.trust(host, port, server);
            change.known = true;
        }
        if self.remember_password && config.password.is_some() {
            self.known
                .remember_password(host, port, config.password.clone());
            change.known = true;
        }
    }

    /// A remembered password the server called wrong is forgotten, so the
    /// user is asked for the new one.
    fn forget_wrong_password(&mut self, e: &ConnectError, change: &mut Change) {
        let wrong = matches!(
            e,
            ConnectError::Rejected {
                code: Some(ErrorCode::PasswordWrong),
                ..
            }
        );
        let Some(config) = &self.last else { return };
        let remembered = self.known.password(&config.host, config.port);
        if wrong && remembered.is_some() && remembered == config.password {
            self.known
                .remember_password(&config.host, config.port, None);
            change.known = true;
        }
    }

    fn event(&mut self, event: SessionEvent, change: &mut Change) {
        // Kicked or banned (the refusal came first): not reconnected.
        let removed = self.refusal.is_some();
        change.log.extend(log_lines(&self.model, &event));
        if let SessionEvent::Refused { code, message } = &event {
            if matches!(code, ErrorCode::Kicked | ErrorCode::Banned) {
                self.refusal = Some(message.clone());
            }
        }
        let lost = match &event {
            // A kick or ban is why the connection ended: say so, not just
            // that the server closed it.
            SessionEvent::Lost { reason } => Some(self.refusal.take().unwrap_or(reason.clone())),
            _ => None,
        };
        self.keep_event(&event);
        change.merge(self.model.apply(event));
        self.send_receipts();
        if let Some(reason) = lost {
            // The reader has ended; closing sends nothing more to a server
            // that is gone or closing.
            self.session = None;
            self.attempt += 1;
            change.log.push(format!("Disconnected: {reason}"));
            self.reconnect_after_loss(&reason, removed, change);
            self.set_status(Status::Lost { reason }, change);
        }
    }

    // Reconnecting by itself. A loss the server's owner did not cause
    // starts the loop; the window runs a timer only while it waits, and
    // calls `tick` when the next try is due. Each try is an ordinary
    // attempt with the last settings; joining ends the loop, and so does
    // the user disconnecting, cancelling or connecting anywhere.

    /// The reconnect loop, for the window's banner and countdown.
    pub fn reconnect(&self) -> &Reconnect {
        &self.reconnect
    }

    /// The attempt just started is the program's own, at start (the user
    /// asked to connect when HubChat starts): if the server is not up yet,
    /// it keeps trying as after a loss instead of only saying why.
    pub fn started_unasked(&mut self) {
        if let Status::Connecting { .. } = self.status {
            self.reconnect.starting();
        }
    }

    /// Starts the next try if it is due at `now`. The window calls this
    /// from its countdown timer; tests pass their own clock.
    pub fn tick(&mut self, now: Instant) -> Change {
        if self.reconnect.due(now) {
            self.retry()
        } else {
            Change::default()
        }
    }

    /// "Reconnect now": tries at once, while waiting to try.
    pub fn reconnect_now(&mut self) -> Change {
        self.retry()
    }

    fn retry(&mut self) -> Change {
        let Some(mut config) = self.last.clone().filter(|_| self.status.idle()) else {
            return Change::default();
        };
        if !self.reconnect.begin_try() {
            return Change::default();
        }
        // The key pinned at the first join, which the last settings may
        // predate: a reconnect never trusts a key anew.
        config.pin = self.known.pin(&config.host, config.port);
        let mut change = self.start(config);
        change.log.clear(); // each failed try says so; no "Connecting..." every time
        change
    }

    fn reconnect_after_loss(&mut self, reason: &str, removed: bool, change: &mut Change) {
        let loss = if removed {
            Loss::Removed
        } else {
            Loss::Dropped
        };
        if let Some(wait) = self.reconnect.lost(reason, loss, Instant::now()) {
            change
                .log
                .push(format!("Reconnecting in {} s.", wait.as_secs()));
        }
    }

    /// A try failed: if the loop goes on, waits for the next and returns
    /// true; otherwise the failure is reported as any other.
    fn try_failed(&mut self, e: &ConnectError, change: &mut Change) -> bool {
        let Some(wait) = self.reconnect.failed(e, Instant::now()) else {
            return false;
        };
        let reason = self.reconnect.reason().unwrap_or_default().to_string();
        change.log.push(format!(
            "Could not connect: {e} Trying again in {} s.",
            wait.as_secs()
        ));
        self.set_status(Status::Lost { reason }, change);
        true
    }

    /// Ends the loop; the log line says so if it was running, else `or`.
    fn stop_reconnecting(&mut self, or: &str) -> String {
        let line = if self.reconnect.active() {
            "Stopped reconnecting."
        } else {
            or
        };
        self.reconnect.stop();
        line.to_string()
    }

    /// Disconnect with no session: stops reconnecting, if it was.
    fn disconnect_while_reconnecting(&mut self) -> Change {
        if !self.reconnect.active() {
            return Change::default();
        }
        if let Status::Connecting { .. } = self.status {
            return self.cancel();
        }
        let mut change = Change::default();
        change.log.push(self.stop_reconnecting(""));
        self.set_status(Status::Offline, &mut change);
        change
    }

    /// Mirrors what an event brings into the history, before the model
    /// shows it: messages (one the history already has is marked as shown,
    /// so the model only confirms it again), and marks.
    fn keep_event(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Chat(chat) => {
                let room = chat.room.is_some();
                let key = ClientModel::key_for(&chat.name, room);
                if self.seen_before(&key, &chat.name, &chat.id, &chat.text, chat.time) {
                    self.model.already_shown(&key, &chat.name, &chat.id);
                }
            }
            SessionEvent::Message { from, text } => {
                if let Some(sender) = self.model.contact(from).filter(|c| !c.is_me) {
                    let name = sender.profile.name.clone();
                    let key = ClientModel::key(&name);
                    let text = text.strip_suffix('\n').unwrap_or(text).to_string();
                    let author = name.clone();
                    // The conversation may not exist yet: keep with the
                    // sender's face from the list.
                    if !self.model.conversations.contains_key(&key) {
                        self.model.open(from);
                    }
                    self.keep_line(
                        &key,
                        KeptLine::Theirs {
                            id: None,
                            author: &author,
                            text: &text,
                            at: now_ms(),
                        },
                    );
                }
            }
            SessionEvent::Receipt(receipt) => {
                if let Some(mark) = Mark::from_delivery(receipt.state, receipt.message.clone()) {
                    self.keep_mark(&receipt.id, &mark);
                }
            }
            _ => {}
        }
    }

    fn set_status(&mut self, status: Status, change: &mut Change) {
        if self.status != status {
            self.status = status;
            change.status = true;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            s.disconnect();
        }
    }
}

/// The status-log lines an event deserves, read before it is applied (a
/// departure needs the name of whoever left).
fn log_lines(model: &ClientModel, event: &SessionEvent) -> Vec<String> {
    match event {
        // The first roster lists who was already here, not newcomers.
        SessionEvent::Listed(_) if model.contacts.is_empty() => Vec::new(),
        SessionEvent::Listed(entries) => entries
            .iter()
            .filter(|(id, _)| model.contact(id).is_none() && *id != model.me)
            .map(|(_, p)| format!("{} joined.", p.name))
            .collect(),
        SessionEvent::Left { id } => model
            .contact(id)
            .map(|c| format!("{} left.", c.profile.name))
            .into_iter()
            .collect(),
        SessionEvent::Refused { message, .. } => vec![message.clone()],
        _ => Vec::new(),
    }
}

/// How a server is named to the user: `host` alone on the usual port,
/// `host (port N)` otherwise.
pub fn server_name(host: &str, port: u16) -> String {
    let host = host.trim();
    if port == crate::server::DEFAULT_PORT {
        host.to_string()
    } else {
        format!("{host} (port {port})")
    }
}

/// How long a handshake may take once connected (a WAN can be slow).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(8);

/// What became of a message the user wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    /// On its way.
    Sent,
    /// Nothing to send (blank), or nobody to send it to.
    Nothing,
    /// Longer than the server relays (`limit` bytes): not sent.
    TooLong { limit: usize },
}

/// The sentence shown when a message is longer than the server takes.
fn too_long(len: usize, limit: usize) -> String {
    format!(
        "Not sent: the message is {} long and this server takes at most {}. Shorten it or send it in parts.",
        size(len),
        size(limit)
    )
}

/// A byte count in the unit a person reads: bytes below 1 KiB, else KiB.
fn size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{:.0} KB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::packet::{ChatIn, Delivery};

    fn temp_file(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hubchat-controller-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("history.sqlite")
    }

    /// A controller keeping its history in `path`, as the program would at
    /// start, with the model as after joining `server` as `me`.
    fn controller(path: &std::path::Path, server: &str) -> Controller {
        let history = Arc::new(History::open(path).expect("a history file"));
        let mut c = Controller::with_history(Arc::new(|_| {}), history);
        c.load_history(server);
        c.model.begin("client1", None);
        c.model.apply(SessionEvent::Listed(vec![(
            "client1".into(),
            Profile {
                name: "me".into(),
                color: "blue".into(),
                image_name: "image_1.png".into(),
                files: false,
            },
        )]));
        c
    }

    fn chat(id: &str, text: &str) -> SessionEvent {
        SessionEvent::Chat(ChatIn {
            id: id.into(),
            from: None,
            name: "alice".into(),
            text: text.into(),
            time: 1_700_000_000_000,
            room: None,
        })
    }

    fn texts(c: &Controller, key: &str) -> Vec<String> {
        c.model.conversations[key]
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect()
    }

    #[test]
    fn conversations_come_back_after_a_restart_with_times_and_marks() {
        let path = temp_file("restart");
        let server = "tls:00";
        let mut first = controller(&path, server);
        let mut change = Change::default();
        first.event(chat("a1", "are you there?"), &mut change);
        let key = "alice";
        assert_eq!(first.say(key, "yes"), Said::Sent);
        let mine = first.model.conversations[key].lines[1].id.clone().unwrap();
        first.event(
            SessionEvent::Receipt(crate::common::packet::ReceiptIn {
                id: mine,
                state: Delivery::Read,
                name: Some("alice".into()),
                message: None,
            }),
            &mut change,
        );
        drop(first);

        let again = controller(&path, server);
        assert_eq!(texts(&again, key), ["are you there?", "yes"]);
        let lines = &again.model.conversations[key].lines;
        assert_eq!(lines[0].at.timestamp_millis(), 1_700_000_000_000);
        assert_eq!(lines[1].mark, Some(Mark::Read));
        let listed: Vec<String> = again
            .model
            .rows()
            .iter()
            .map(|(c, _)| c.profile.name.clone())
            .collect();
        assert!(listed.contains(&"alice".to_string()), "{listed:?}");
        // Another server's history is its own.
        let elsewhere = controller(&path, "addr:other:5050");
        assert!(!elsewhere.model.conversations.contains_key(key));
    }

    #[test]
    fn a_message_delivered_again_after_a_restart_is_shown_once_and_confirmed_again() {
        let path = temp_file("twice");
        let server = "tls:01";
        let mut first = controller(&path, server);
        let mut change = Change::default();
        first.event(chat("k1", "kept for you"), &mut change);
        drop(first);

        // The program stopped before its confirmation reached the server,
        // which hands the message out again.
        let mut again = controller(&path, server);
        again.event(chat("k1", "kept for you"), &mut change);
        assert_eq!(texts(&again, "alice"), ["kept for you"]);
        assert_eq!(again.model.conversations["alice"].unread, 0, "not new");
        assert_eq!(
            again.model.receipts,
            [("k1".into(), "alice".into(), Delivery::Delivered)],
            "confirmed again, so the server lets go of it"
        );
    }

    #[test]
    fn messages_still_sending_at_exit_are_sent_after_the_restart() {
        let path = temp_file("unsent");
        let server = "tls:02";
        let mut first = controller(&path, server);
        let mut change = Change::default();
        first.event(chat("x", "hi"), &mut change);
        first.say("alice", "one");
        first.say("alice", "two");
        drop(first);
        let again = controller(&path, server);
        let unsent: Vec<String> = again.model.unsent().into_iter().map(|u| u.2).collect();
        assert_eq!(unsent, ["one", "two"]);
    }

    #[test]
    fn clearing_a_conversation_forgets_it_on_disk_too() {
        let path = temp_file("clear");
        let server = "tls:03";
        let mut first = controller(&path, server);
        let mut change = Change::default();
        first.event(chat("c1", "secret"), &mut change);
        assert_eq!(first.search("secret").len(), 1);
        first.clear_history("alice");
        assert!(texts(&first, "alice").is_empty());
        assert!(first.search("secret").is_empty());
        drop(first);
        let again = controller(&path, server);
        assert!(again
            .model
            .conversations
            .get("alice")
            .is_none_or(|c| c.lines.is_empty()));
    }

    #[test]
    fn a_search_hit_opens_its_conversation_at_the_line() {
        let path = temp_file("hit");
        let server = "tls:04";
        let mut c = controller(&path, server);
        let mut change = Change::default();
        for i in 0..30 {
            c.event(chat(&format!("h{i}"), &format!("line {i}")), &mut change);
        }
        c.event(chat("needle", "the blue folder"), &mut change);
        for i in 30..40 {
            c.event(chat(&format!("h{i}"), &format!("line {i}")), &mut change);
        }
        let hits = c.search("folder");
        assert_eq!(hits.len(), 1);
        let (key, at) = c.show_hit(&hits[0]).expect("shown");
        assert_eq!(key, "alice");
        assert_eq!(
            c.model.conversations[&key].lines[at].text,
            "the blue folder"
        );
        assert_eq!(at, HIT_CONTEXT, "with some lines before it");
        let last = c.model.conversations[&key]
            .lines
            .last()
            .unwrap()
            .text
            .clone();
        assert_eq!(last, "line 39", "and every line after it");
    }
}
