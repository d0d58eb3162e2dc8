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

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::model::{ClientModel, Face, Update};
use crate::client::reconnect::{Loss, Reconnect};
use crate::client::session::{
    ConnectError, Encryption, ServerKind, Session, SessionConfig, SessionEvent,
};
use crate::client::trust::KnownServers;
use crate::common::avatar::Picture;
use crate::common::packet::{ErrorCode, Profile};

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
    /// Reconnecting by itself after a loss: when to try next, or nothing.
    reconnect: Reconnect,
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
            reconnect: Reconnect::default(),
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
    pub fn say(&mut self, key: &str, text: &str) -> Said {
        let Some(session) = self.session.as_ref() else {
            return Said::Nothing;
        };
        let limit = session.max_message().filter(|&l| text.len() > l);
        if let (Some(limit), false) = (limit, text.trim().is_empty()) {
            self.model.note(key, too_long(text.len(), limit));
            return Said::TooLong { limit };
        }
        match self.model.say(key, text) {
            Some(to) => {
                session.send(&to, text);
                Said::Sent
            }
            None => Said::Nothing,
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
        change.merge(self.model.apply(event));
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
