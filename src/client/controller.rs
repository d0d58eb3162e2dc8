//! The client's life with servers, without any GUI: connecting (on a worker
//! thread, cancellable), the session while it lasts, losing it, and
//! disconnecting, over one [`ClientModel`] that outlives every session.
//!
//! The window owns one `Controller` and feeds it what the worker threads
//! report ([`Input`], through the window's single message channel) and what
//! the user does; each call returns a [`Change`] saying what to redraw.
//! Keeping this below the GUI means a reconnect is one code path, tested
//! headless against a real server, and conversations (keyed by partner
//! name) survive it. Automatic reconnect will live here too.
//!
//! Every connection attempt gets a number. Whatever a worker reports is
//! tagged with the attempt it belongs to, and reports from an attempt that
//! was cancelled or has ended are ignored, so a late answer can never touch
//! the current session.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::model::{ClientModel, Face, Mark, Update};
use crate::client::session::{
    ConnectError, Encryption, ServerKind, Session, SessionConfig, SessionEvent,
};
use crate::client::trust::KnownServers;
use crate::common::avatar::Picture;
use crate::common::packet::{ChatTarget, ErrorCode, Profile};
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
            change.log.push("Cancelled.".into());
            self.set_status(Status::Offline, &mut change);
        }
        change
    }

    /// Leaves the server (the user asked).
    pub fn disconnect(&mut self) -> Change {
        let mut change = Change::default();
        let Some(session) = self.session.take() else {
            return change;
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
        self.model.set_mark(id, mark);
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
        self.model.begin(&session.id, own);
        let me = session.id.clone();
        let kind = session.kind;
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
        change.merge(self.model.apply(event));
        self.send_receipts();
        if let Some(reason) = lost {
            // The reader has ended; closing sends nothing more to a server
            // that is gone or closing.
            self.session = None;
            self.attempt += 1;
            change.log.push(format!("Disconnected: {reason}"));
            self.set_status(Status::Lost { reason }, change);
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
