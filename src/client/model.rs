//! What the client shows, as plain data: the list of clients and one
//! conversation per partner, derived from session events.
//!
//! Conversations are keyed by the partner's name (ignoring case), not its
//! id: a partner who leaves and comes back gets a new id, and the same
//! window, transcript and all, takes it up again. The model outlives
//! sessions: losing the connection empties the list but keeps every
//! conversation, with the partner's last known face, so a reconnect picks
//! them all up where they were. The window layer asks the model what
//! changed and draws it; nothing here touches FLTK.
//!
//! With a HubChat server of version 3 there is more: the Everyone room
//! (its own conversation, under [`EVERYONE_KEY`]), people who are away
//! (listed greyed, and written to like anyone), a mark on each message we
//! send saying how far it got, and "is typing". Each message from a
//! HubChat peer has an id; one that comes twice (the server hands out
//! again what it never heard confirmed) is shown once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, TimeZone};

use crate::client::file_rows::{FileRow, FileState};
use crate::client::files::{FileEvent, TransferKey};
use crate::client::session::SessionEvent;
use crate::common::avatar::Picture;
use crate::common::color::{self, Rgb};
use crate::common::file_packet::describe_size;
use crate::common::packet::{ChatIn, Delivery, Person, Profile, ReceiptIn};
use crate::common::profile::name_key;

/// The key of the Everyone room's conversation. Keys of people are the
/// keys of names, which never hold control characters, so no one's can
/// be this.
pub const EVERYONE_KEY: &str = "\u{1}everyone";

/// How long "is typing" shows after the last word that someone is typing:
/// typists say so at most every 3 seconds, so two missed signals end it.
pub const TYPING_SHOWN: Duration = Duration::from_secs(6);

/// How far a message we sent has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Not yet acknowledged: waiting for a connection, or for the server.
    Sending,
    /// Handed on; the recipient's program cannot confirm (an original
    /// client or server), or it went to the whole room.
    Sent,
    /// The recipient is away; the server keeps it for them.
    Kept,
    /// In the recipient's program.
    Delivered,
    /// The recipient had its window in front of them.
    Read,
    /// It cannot be delivered, for this reason.
    Failed(String),
}

impl Mark {
    /// Whether a mark may follow this one: only forward (read beats
    /// delivered beats kept or sent beats sending), and to failed only
    /// while nothing has confirmed it arrived. A message given up on may
    /// still turn out delivered or read: the recipient's receipt is the
    /// last word. (The same rule as the history's.)
    pub fn may_become(&self, next: &Mark) -> bool {
        use Mark::*;
        match next {
            Sending => false,
            Sent | Kept => *self == Sending,
            Failed(_) => matches!(self, Sending | Sent | Kept),
            Delivered => matches!(self, Sending | Sent | Kept | Failed(_)),
            Read => !matches!(self, Read),
        }
    }

    /// The small sign after the time.
    pub fn glyph(&self) -> &'static str {
        match self {
            Mark::Sending => "…",
            Mark::Sent => "✓",
            Mark::Kept => "✉",
            Mark::Delivered => "✓✓",
            Mark::Read => "✓✓",
            Mark::Failed(_) => "✗",
        }
    }

    /// What the mark means, for its tooltip.
    pub fn describe(&self, partner: &str) -> String {
        match self {
            Mark::Sending => "Sending: not yet confirmed by the server.".into(),
            Mark::Sent => format!("Sent. {partner}'s program cannot confirm delivery."),
            Mark::Kept => format!(
                "Kept for later: {partner} is away; the server delivers it when they are back."
            ),
            Mark::Delivered => format!("Delivered to {partner}'s program."),
            Mark::Read => format!("Read: {partner} had the conversation in front of them."),
            Mark::Failed(why) => format!("Not delivered: {why}"),
        }
    }

    /// The mark a receipt state sets.
    pub fn from_delivery(state: Delivery, message: Option<String>) -> Option<Mark> {
        Some(match state {
            Delivery::Sent => Mark::Sent,
            Delivery::Kept => Mark::Kept,
            Delivery::Delivered => Mark::Delivered,
            Delivery::Read => Mark::Read,
            Delivery::Failed => {
                Mark::Failed(message.unwrap_or_else(|| "the server could not deliver it.".into()))
            }
            Delivery::Other => return None,
        })
    }
}

/// Whether a list row is someone here, someone away, or the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Here,
    /// Has been here before (the server knows them); shown greyed.
    Away,
    /// The Everyone room.
    Room,
}

/// One client in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub profile: Profile,
    /// Its colour as shown.
    pub color: Rgb,
    /// This is us: marked in the list, not clickable.
    pub is_me: bool,
    /// Its own avatar picture, if it sent one (HubChat only).
    pub picture: Option<Arc<Picture>>,
    pub presence: Presence,
}

impl Contact {
    /// Someone the server told us is away: no id.
    fn away(person: &Person) -> Self {
        let profile = Profile {
            name: person.name.clone(),
            color: person.color.clone(),
            image_name: person.image_name.clone(),
            files: false,
        };
        Contact {
            id: String::new(),
            color: color::for_display(&profile.color),
            profile,
            is_me: false,
            picture: None,
            presence: Presence::Away,
        }
    }
}

/// Who wrote a line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Me,
    Partner,
    /// Someone in the Everyone room, by name.
    Member(String),
    /// The program itself: "bob left", "connection lost".
    Notice,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub author: Author,
    pub text: String,
    /// When it was received or sent, not when it was drawn: a message that
    /// arrived while its window was closed keeps its own time.
    pub at: DateTime<Local>,
    /// The message's id, for messages with one (ours, and HubChat peers').
    pub id: Option<String>,
    /// How far our own message got; `None` for everything else.
    pub mark: Option<Mark>,
}

impl Line {
    fn now(author: Author, text: String) -> Self {
        Line {
            author,
            text,
            at: Local::now(),
            id: None,
            mark: None,
        }
    }
}

/// One side of a conversation as its header shows it: what was last seen
/// of that person, kept while they are away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Face {
    pub name: String,
    pub color: Rgb,
    pub image_name: String,
    pub picture: Option<Arc<Picture>>,
}

impl Face {
    /// How a profile looks, with its own picture if it sent one.
    pub fn of(profile: &Profile, picture: Option<Arc<Picture>>) -> Self {
        Face {
            name: profile.name.clone(),
            color: color::for_display(&profile.color),
            image_name: profile.image_name.clone(),
            picture,
        }
    }
}

/// Everything said with one partner since the program started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The partner's name as last seen.
    pub partner: String,
    /// The partner as last seen, for the window's header.
    pub face: Face,
    /// The partner's id while connected.
    pub partner_id: Option<String>,
    pub lines: Vec<Line>,
    /// Messages received that the user has not seen yet: a message is
    /// unread until its window has had the keyboard focus.
    pub unread: usize,
    /// The Everyone room rather than one person.
    pub room: bool,
    /// Until when "is typing" shows.
    pub typing_until: Option<Instant>,
    /// Messages received (id, sender's name) whose sender is to hear they
    /// were read once the user looks.
    pub to_read: Vec<(String, String)>,
    /// The line a search found, shown marked.
    pub found: Option<usize>,
    /// Files offered, moving or done in this conversation, oldest first.
    pub files: Vec<FileRow>,
}

impl Conversation {
    /// Whether the partner is here right now. (The user can always write:
    /// a message to someone away is kept by a HubChat server, or told as
    /// undeliverable; one written while disconnected waits.)
    pub fn can_send(&self) -> bool {
        self.partner_id.is_some()
    }

    /// Whether "is typing" shows now.
    pub fn typing(&self, now: Instant) -> bool {
        self.typing_until.is_some_and(|t| t > now)
    }

    fn with(partner: &str, face: Face, partner_id: Option<String>) -> Self {
        Conversation {
            partner: partner.to_string(),
            face,
            partner_id,
            lines: Vec::new(),
            unread: 0,
            room: false,
            typing_until: None,
            to_read: Vec::new(),
            found: None,
            files: Vec::new(),
        }
    }
}

/// What an event changed, for the window to redraw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// The list of clients changed.
    pub list: bool,
    /// Conversations that changed, by key.
    pub conversations: Vec<String>,
    /// A message arrived in this conversation: open, restore and raise it.
    pub incoming: Option<String>,
    /// The session is over, with this reason.
    pub lost: Option<String>,
}

/// A receipt for the controller to send: (message id, to whom, state).
pub type Receipt = (String, String, Delivery);

/// The client's whole state: the current session's list, and every
/// conversation since the program started.
#[derive(Debug, Default)]
pub struct ClientModel {
    /// Our id in the current session; empty while not connected.
    pub me: String,
    /// How we look to others, for the headers; kept while not connected.
    pub own: Option<Face>,
    /// In the order the server listed them; empty while not connected.
    /// Change it only through the model, which keeps `by_id` in step.
    pub contacts: Vec<Contact>,
    /// Where each id stands in `contacts`: a server can list a great many
    /// clients (a hostile one, hundreds of thousands), and finding each by
    /// walking the list made a large roster cost minutes.
    by_id: HashMap<String, usize>,
    /// By name key.
    pub conversations: HashMap<String, Conversation>,
    /// The conversation whose window has the keyboard focus, if any.
    pub viewing: Option<String>,
    /// People who have been here and are away, by name key.
    pub away: Vec<Contact>,
    /// Which conversation each of our messages with an id is in.
    by_message: HashMap<String, String>,
    /// Messages already shown, by (conversation, author's key, id): the
    /// server may hand one out twice.
    seen: HashSet<(String, String, String)>,
    /// Receipts waiting to be sent.
    pub receipts: Vec<Receipt>,
}

impl ClientModel {
    /// A model for a session that joined with id `me` (tests start here).
    pub fn new(me: &str) -> Self {
        let mut model = ClientModel::default();
        model.begin(me, None);
        model
    }

    /// A new session joined with id `me`: the list starts empty and fills
    /// from its first roster; conversations are kept. `own` is how we look,
    /// if known.
    pub fn begin(&mut self, me: &str, own: Option<Face>) {
        self.me = me.to_string();
        self.contacts.clear();
        self.by_id.clear();
        if own.is_some() {
            self.own = own;
        }
    }

    /// Whether a session is on: we are listed under an id.
    pub fn connected(&self) -> bool {
        !self.me.is_empty()
    }

    /// Messages received and not yet seen, in every conversation.
    pub fn unread_total(&self) -> usize {
        self.conversations.values().map(|c| c.unread).sum()
    }

    /// The conversation key for a name.
    pub fn key(name: &str) -> String {
        name_key(name)
    }

    /// The contact with this id.
    pub fn contact(&self, id: &str) -> Option<&Contact> {
        self.by_id.get(id).and_then(|&at| self.contacts.get(at))
    }

    /// Applies one session event.
    pub fn apply(&mut self, event: SessionEvent) -> Update {
        let mut update = Update::default();
        match event {
            SessionEvent::Listed(entries) => {
                for (id, profile) in entries {
                    if self.contact(&id).is_some() {
                        continue; // the original repeats the whole list
                    }
                    self.arrived(&id, &profile, &mut update);
                    let mut profile = profile;
                    if let (true, Some(own)) = (id == self.me, &self.own) {
                        // An original server lists us with the stand-in
                        // picture it was sent; we show our own choice.
                        profile.image_name = own.image_name.clone();
                    }
                    let key = Self::key(&profile.name);
                    self.away.retain(|a| Self::key(&a.profile.name) != key);
                    self.by_id.insert(id.clone(), self.contacts.len());
                    self.contacts.push(Contact {
                        is_me: id == self.me,
                        picture: None,
                        color: color::for_display(&profile.color),
                        id,
                        profile,
                        presence: Presence::Here,
                    });
                    update.list = true;
                }
            }
            SessionEvent::Left { id } => {
                if let Some(at) = self.by_id.remove(&id) {
                    let gone = self.contacts.remove(at);
                    for later in &self.contacts[at..] {
                        if let Some(i) = self.by_id.get_mut(&later.id) {
                            *i -= 1;
                        }
                    }
                    update.list = true;
                    let key = Self::key(&gone.profile.name);
                    if let Some(c) = self.conversations.get_mut(&key) {
                        c.partner_id = None;
                        c.lines.push(notice(format!("{} left.", gone.profile.name)));
                        update.conversations.push(key);
                    }
                }
            }
            SessionEvent::Message { from, text } => {
                let Some(sender) = self.contact(&from).cloned() else {
                    return update; // from no one we know: nothing to show it in
                };
                let key = self.open(&sender.id).unwrap_or_default();
                let line = Line::now(
                    Author::Partner,
                    text.strip_suffix('\n').unwrap_or(&text).to_string(),
                );
                self.received(&key, line, &mut update);
            }
            SessionEvent::Chat(chat) => self.chat(chat, &mut update),
            SessionEvent::Receipt(receipt) => self.receipt(receipt, &mut update),
            SessionEvent::Typing { name, active } => {
                let key = Self::key(&name);
                if let Some(c) = self.conversations.get_mut(&key) {
                    c.typing_until = active.then(|| Instant::now() + TYPING_SHOWN);
                    update.conversations.push(key);
                }
            }
            SessionEvent::People(people) => {
                for person in &people {
                    let key = Self::key(&person.name);
                    let here = self
                        .contacts
                        .iter()
                        .any(|c| Self::key(&c.profile.name) == key);
                    if here || key == Self::key(self.own.as_ref().map_or("", |o| &o.name)) {
                        continue;
                    }
                    self.away.retain(|a| Self::key(&a.profile.name) != key);
                    self.away.push(Contact::away(person));
                    update.list = true;
                }
            }
            SessionEvent::Picture { id, picture } => {
                let me = id == self.me;
                let at = self.by_id.get(&id).copied();
                let Some(contact) = at.and_then(|at| self.contacts.get_mut(at)) else {
                    return update;
                };
                let picture = Arc::new(picture);
                contact.picture = Some(picture.clone());
                let key = Self::key(&contact.profile.name);
                update.list = true;
                if me {
                    if let Some(own) = self.own.as_mut() {
                        own.picture = Some(picture);
                    }
                    update
                        .conversations
                        .extend(self.conversations.keys().cloned());
                } else if let Some(c) = self.conversations.get_mut(&key) {
                    c.face.picture = Some(picture);
                    update.conversations.push(key);
                }
            }
            SessionEvent::File(event) => self.file(event, &mut update),
            SessionEvent::Refused { message, .. } => {
                if let Some(key) = self.viewing.clone() {
                    if let Some(c) = self.conversations.get_mut(&key) {
                        c.lines.push(notice(message));
                        update.conversations.push(key);
                    }
                }
            }
            SessionEvent::Lost { reason } => {
                for (key, c) in &mut self.conversations {
                    // Transfers live on the connection: none survives it.
                    for row in c.files.iter_mut().filter(|r| !r.state.is_over()) {
                        row.state = FileState::Ended {
                            message: format!("The transfer stopped: {reason}"),
                        };
                    }
                    c.partner_id = None;
                    c.lines.push(notice(format!("Disconnected: {reason}")));
                    update.conversations.push(key.clone());
                }
                self.contacts.clear();
                self.by_id.clear();
                self.away.clear();
                self.me.clear();
                update.list = true;
                update.lost = Some(reason);
            }
        }
        update
    }

    /// Opens (or finds) the conversation with the client `id`; returns its
    /// key. `None` for ourselves or an unknown id.
    pub fn open(&mut self, id: &str) -> Option<String> {
        let contact = self.contact(id)?.clone();
        if contact.is_me {
            return None;
        }
        let key = Self::key(&contact.profile.name);
        self.conversations.entry(key.clone()).or_insert_with(|| {
            Conversation::with(
                &contact.profile.name,
                Face::of(&contact.profile, contact.picture.clone()),
                Some(contact.id.clone()),
            )
        });
        Some(key)
    }

    /// Opens (or finds) the conversation with someone who is away, by
    /// their name as listed (away, or known from the history).
    pub fn open_away(&mut self, name: &str) -> Option<String> {
        let key = Self::key(name);
        if self.conversations.contains_key(&key) {
            return Some(key);
        }
        let contact = self
            .away
            .iter()
            .find(|a| Self::key(&a.profile.name) == key)?
            .clone();
        self.conversations.entry(key.clone()).or_insert_with(|| {
            Conversation::with(
                &contact.profile.name,
                Face::of(&contact.profile, None),
                None,
            )
        });
        Some(key)
    }

    /// Puts back a conversation kept from an earlier run (the history):
    /// its lines, oldest first, and its partner as last seen, who is listed
    /// greyed until here again. Our messages still marked sending go out
    /// after the next join. A conversation already open is left as it is.
    pub fn restore(&mut self, key: &str, partner: &Profile, lines: Vec<Line>) {
        if self.conversations.contains_key(key) {
            return;
        }
        let room = key == EVERYONE_KEY;
        if room {
            self.open_room();
        } else {
            self.conversations.insert(
                key.to_string(),
                Conversation::with(&partner.name, Face::of(partner, None), None),
            );
        }
        for line in &lines {
            if let Some(id) = &line.id {
                match &line.author {
                    Author::Me => {
                        self.by_message.insert(id.clone(), key.to_string());
                    }
                    Author::Partner => {
                        let author = Self::key(&partner.name);
                        self.seen.insert((key.to_string(), author, id.clone()));
                    }
                    Author::Member(name) => {
                        self.seen
                            .insert((key.to_string(), Self::key(name), id.clone()));
                    }
                    Author::Notice => {}
                }
            }
        }
        if let Some(c) = self.conversations.get_mut(key) {
            c.lines = lines;
        }
    }

    /// Shows a stretch of a conversation's history in place of its lines
    /// (a search jumps to a line older than those shown), oldest first.
    pub fn replace_lines(&mut self, key: &str, lines: Vec<Line>, found: Option<usize>) {
        for line in &lines {
            if let (Author::Me, Some(id)) = (&line.author, &line.id) {
                self.by_message.insert(id.clone(), key.to_string());
            }
        }
        if let Some(c) = self.conversations.get_mut(key) {
            c.lines = lines;
            c.found = found;
        }
    }

    /// Marks a message as already shown (the history has it), so that the
    /// server handing it out again only has it confirmed again.
    pub fn already_shown(&mut self, key: &str, author: &str, id: &str) {
        self.seen
            .insert((key.to_string(), Self::key(author), id.to_string()));
    }

    /// Empties a conversation's transcript (the user cleared its history).
    pub fn clear(&mut self, key: &str) {
        if let Some(c) = self.conversations.get_mut(key) {
            c.lines.clear();
            c.unread = 0;
            c.to_read.clear();
            c.found = None;
        }
        self.by_message.retain(|_, k| k != key);
    }

    /// The conversation a message from `name` (to us, or to the room)
    /// goes in.
    pub fn key_for(name: &str, room: bool) -> String {
        if room {
            EVERYONE_KEY.to_string()
        } else {
            Self::key(name)
        }
    }

    /// Opens (or finds) the Everyone room's conversation.
    pub fn open_room(&mut self) -> String {
        self.conversations
            .entry(EVERYONE_KEY.to_string())
            .or_insert_with(|| {
                let face = Face {
                    name: "Everyone".into(),
                    color: color::for_display("gray"),
                    image_name: String::new(),
                    picture: None,
                };
                let mut c = Conversation::with("Everyone", face, None);
                c.room = true;
                c
            });
        EVERYONE_KEY.to_string()
    }

    /// The list as shown: the room first (while connected), then everyone
    /// here in the server's order, then those away.
    pub fn rows(&self) -> Vec<(Contact, usize)> {
        let mut rows = Vec::with_capacity(self.contacts.len() + self.away.len() + 1);
        if self.connected() {
            let room = Contact {
                id: String::new(),
                profile: Profile {
                    name: "Everyone".into(),
                    color: "gray".into(),
                    image_name: String::new(),
                    files: false,
                },
                color: color::for_display("gray"),
                is_me: false,
                picture: None,
                presence: Presence::Room,
            };
            let unread = self.conversations.get(EVERYONE_KEY).map_or(0, |c| c.unread);
            rows.push((room, unread));
        }
        let listed = |c: &Contact| {
            let key = Self::key(&c.profile.name);
            self.contacts
                .iter()
                .chain(&self.away)
                .any(|o| Self::key(&o.profile.name) == key)
        };
        // People of conversations (from the history, or talked with
        // before a loss) who are neither here nor listed as away.
        let mut talked: Vec<Contact> = self
            .conversations
            .values()
            .filter(|c| !c.room)
            .map(|c| {
                let mut contact = Contact::away(&Person {
                    name: c.partner.clone(),
                    color: c.face.color.to_string(),
                    image_name: c.face.image_name.clone(),
                    last_seen: 0,
                });
                contact.picture = c.face.picture.clone();
                contact
            })
            .filter(|c| !listed(c))
            .collect();
        talked.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
        for c in self.contacts.iter().chain(&self.away).chain(&talked) {
            let unread = self
                .conversations
                .get(&Self::key(&c.profile.name))
                .map_or(0, |c| c.unread);
            rows.push((c.clone(), if c.is_me { 0 } else { unread }));
        }
        rows
    }

    /// The user is looking at this conversation (its window has the
    /// keyboard focus), or at none: its messages are read. Returns whether
    /// an unread count changed.
    pub fn look_at(&mut self, key: Option<&str>) -> bool {
        self.viewing = key.map(str::to_string);
        key.is_some_and(|k| self.mark_read(k))
    }

    /// The user opened this conversation and sees it: its messages are
    /// read (and their senders are to hear so). Returns whether an unread
    /// count changed.
    pub fn mark_read(&mut self, key: &str) -> bool {
        let Some(c) = self.conversations.get_mut(key) else {
            return false;
        };
        for (id, name) in c.to_read.drain(..) {
            self.receipts.push((id, name, Delivery::Read));
        }
        if c.unread > 0 {
            c.unread = 0;
            true
        } else {
            false
        }
    }

    /// The user no longer looks at this conversation (its window lost the
    /// keyboard focus or was closed).
    pub fn look_away(&mut self, key: &str) {
        if self.viewing.as_deref() == Some(key) {
            self.viewing = None;
        }
    }

    /// Records a message the user sends, as `Sending` under the id `id`;
    /// says whether there was something to record (not blank, and a
    /// conversation to put it in). Where it goes is the controller's
    /// business.
    pub fn say(&mut self, key: &str, text: &str, id: &str) -> bool {
        if text.trim().is_empty() {
            return false;
        }
        let Some(c) = self.conversations.get_mut(key) else {
            return false;
        };
        let mut line = Line::now(Author::Me, text.to_string());
        line.id = Some(id.to_string());
        line.mark = Some(Mark::Sending);
        c.lines.push(line);
        c.typing_until = None;
        self.by_message.insert(id.to_string(), key.to_string());
        true
    }

    /// Sets the mark of our message `id`, if it moves forward; returns the
    /// conversation it is in when it changed.
    pub fn set_mark(&mut self, id: &str, mark: Mark) -> Option<String> {
        let key = self.by_message.get(id)?.clone();
        let c = self.conversations.get_mut(&key)?;
        let line = c
            .lines
            .iter_mut()
            .rev()
            .find(|l| l.author == Author::Me && l.id.as_deref() == Some(id))?;
        let current = line.mark.clone().unwrap_or(Mark::Sending);
        if !current.may_become(&mark) {
            return None;
        }
        line.mark = Some(mark);
        Some(key)
    }

    /// Our messages still waiting to be confirmed, oldest first in each
    /// conversation: (conversation, id, text).
    pub fn unsent(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<(DateTime<Local>, String, String, String)> = Vec::new();
        for (key, c) in &self.conversations {
            for l in &c.lines {
                if let (Author::Me, Some(Mark::Sending), Some(id)) = (&l.author, &l.mark, &l.id) {
                    out.push((l.at, key.clone(), id.clone(), l.text.clone()));
                }
            }
        }
        out.sort_by_key(|a| a.0);
        out.into_iter().map(|(_, k, i, t)| (k, i, t)).collect()
    }

    /// A message from a HubChat peer (version 3): to us, or to the room.
    /// One already shown (the same author and id) is not shown again, but
    /// is confirmed again: the server asks because it did not hear.
    fn chat(&mut self, chat: ChatIn, update: &mut Update) {
        let room = chat.room.is_some();
        let key = if room {
            self.open_room()
        } else {
            self.open_named(&chat.name, chat.from.as_deref())
        };
        if !room {
            self.receipts
                .push((chat.id.clone(), chat.name.clone(), Delivery::Delivered));
        }
        let seen = (key.clone(), Self::key(&chat.name), chat.id.clone());
        if !self.seen.insert(seen) {
            return;
        }
        let at = Local
            .timestamp_millis_opt(chat.time)
            .single()
            .unwrap_or_else(Local::now);
        let author = if room {
            Author::Member(chat.name.clone())
        } else {
            Author::Partner
        };
        let line = Line {
            author,
            text: chat.text,
            at,
            id: Some(chat.id.clone()),
            mark: None,
        };
        if let Some(c) = self.conversations.get_mut(&key) {
            c.typing_until = None;
            if !room {
                c.to_read.push((chat.id, chat.name));
            }
        }
        self.received(&key, line, update);
    }

    /// The conversation with `name`, opened if needed: from the list if
    /// they are here or away, else with a plain face.
    fn open_named(&mut self, name: &str, id: Option<&str>) -> String {
        if let Some(key) = id.and_then(|id| self.open(id)) {
            return key;
        }
        if let Some(key) = self.open_away(name) {
            return key;
        }
        let key = Self::key(name);
        let profile = Profile {
            name: name.to_string(),
            color: "gray".into(),
            image_name: "image_1.png".into(),
            files: false,
        };
        self.conversations
            .entry(key.clone())
            .or_insert_with(|| Conversation::with(name, Face::of(&profile, None), None));
        key
    }

    /// Adds a received line: unread unless the user is looking (then read,
    /// and its sender is to hear so).
    fn received(&mut self, key: &str, line: Line, update: &mut Update) {
        let looking = self.viewing.as_deref() == Some(key);
        if let Some(c) = self.conversations.get_mut(key) {
            c.lines.push(line);
            if looking {
                for (id, name) in c.to_read.drain(..) {
                    self.receipts.push((id, name, Delivery::Read));
                }
            } else {
                c.unread += 1;
            }
        }
        update.list = true; // unread count
        update.conversations.push(key.to_string());
        update.incoming = Some(key.to_string());
    }

    fn receipt(&mut self, receipt: ReceiptIn, update: &mut Update) {
        let failed = receipt
            .message
            .clone()
            .filter(|_| receipt.state == Delivery::Failed);
        let Some(mark) = Mark::from_delivery(receipt.state, receipt.message) else {
            return;
        };
        if let Some(key) = self.set_mark(&receipt.id, mark) {
            if let (Some(why), Some(c)) = (failed, self.conversations.get_mut(&key)) {
                c.lines.push(notice(why));
            }
            update.conversations.push(key);
        }
    }

    /// Adds a notice to conversation `key` (one the user is looking at).
    pub fn note(&mut self, key: &str, text: String) {
        if let Some(c) = self.conversations.get_mut(key) {
            c.lines.push(notice(text));
        }
    }

    /// Unread messages from the contact with this id.
    pub fn unread(&self, id: &str) -> usize {
        self.contact(id)
            .and_then(|c| self.conversations.get(&Self::key(&c.profile.name)))
            .map_or(0, |c| c.unread)
    }

    /// A partner with a known conversation came back (or we did): take it
    /// up again under the new id, with the face they have now.
    fn arrived(&mut self, id: &str, profile: &Profile, update: &mut Update) {
        if id == self.me {
            return;
        }
        let key = Self::key(&profile.name);
        if let Some(c) = self.conversations.get_mut(&key) {
            if c.partner_id.is_none() {
                c.partner_id = Some(id.to_string());
                c.partner = profile.name.clone();
                c.face = Face::of(profile, None);
                c.lines.push(notice(format!("{} is back.", profile.name)));
                update.conversations.push(key);
            }
        }
    }
}

impl ClientModel {
    /// We offered a file in conversation `key` (to its partner, or to the
    /// room): its row waits for an answer.
    pub fn offered_file(&mut self, key: &str, transfer: &str, name: &str, size: u64) {
        let Some(c) = self.conversations.get_mut(key) else {
            return;
        };
        let peer_name = if c.room {
            "everyone".to_string()
        } else {
            c.partner.clone()
        };
        let row_key = TransferKey {
            transfer: transfer.to_string(),
            peer: String::new(),
            outgoing: true,
        };
        c.files.push(FileRow::new(
            row_key,
            name.to_string(),
            size,
            peer_name.clone(),
        ));
        c.lines.push(Line::now(
            Author::Me,
            format!("Offered {name} ({}) to {peer_name}.", describe_size(size)),
        ));
    }

    /// We accepted a file: its row shows progress from now on.
    pub fn file_started(&mut self, transfer: &TransferKey) {
        if let Some((_, row)) = self.file_row(transfer) {
            row.moved(0, Instant::now());
        }
    }

    /// We declined a file: its row says so.
    pub fn file_declined(&mut self, key: &str, transfer: &TransferKey) {
        if let Some((_, row)) = self.file_row(transfer) {
            let line = format!("You declined {}.", row.name);
            row.state = FileState::Ended {
                message: "Declined.".into(),
            };
            self.note_file(key, line, &mut Update::default());
        }
    }

    /// Forgets the row of a finished transfer (the user closed it).
    pub fn dismiss_file(&mut self, key: &str, transfer: &TransferKey) -> bool {
        let Some(c) = self.conversations.get_mut(key) else {
            return false;
        };
        let before = c.files.len();
        c.files.retain(|r| &r.key != transfer || !r.state.is_over());
        c.files.len() != before
    }

    /// The conversation and row of a transfer.
    fn file_row(&mut self, key: &TransferKey) -> Option<(String, &mut FileRow)> {
        self.conversations.iter_mut().find_map(|(k, c)| {
            c.files
                .iter_mut()
                .find(|r| &r.key == key)
                .map(|r| (k.clone(), r))
        })
    }

    fn file(&mut self, event: FileEvent, update: &mut Update) {
        let now = Instant::now();
        match event {
            FileEvent::Offered {
                key,
                name,
                size,
                thumbnail,
                room,
            } => {
                let Some(sender) = self.contact(&key.peer).cloned() else {
                    return;
                };
                let conv = if room {
                    self.open_room()
                } else {
                    match self.open(&sender.id) {
                        Some(conv) => conv,
                        None => return,
                    }
                };
                let mut row = FileRow::new(key, name.clone(), size, sender.profile.name.clone());
                row.thumbnail = thumbnail
                    .and_then(|png| crate::common::thumbnail::check(&png).ok())
                    .map(Arc::new);
                if let Some(c) = self.conversations.get_mut(&conv) {
                    c.files.push(row);
                }
                let author = if room {
                    Author::Member(sender.profile.name.clone())
                } else {
                    Author::Partner
                };
                let line = Line::now(
                    author,
                    format!(
                        "offers {name} ({}). Accept or decline it below.",
                        describe_size(size)
                    ),
                );
                self.received(&conv, line, update);
            }
            FileEvent::Accepted { key } => {
                // Our offer's waiting row becomes the receiver's; for the
                // room, each receiver gets a row of its own.
                let peer_name = self
                    .contact(&key.peer)
                    .map_or_else(|| key.peer.clone(), |c| c.profile.name.clone());
                let waiting = TransferKey {
                    peer: String::new(),
                    ..key.clone()
                };
                let Some((conv, row)) = self.file_row(&waiting) else {
                    return;
                };
                let room = row.peer_name == "everyone";
                let mut taken = row.clone();
                taken.key = key;
                taken.peer_name = peer_name;
                taken.moved(0, now);
                if room {
                    if let Some(c) = self.conversations.get_mut(&conv) {
                        c.files.push(taken);
                    }
                } else {
                    *row = taken;
                }
                update.conversations.push(conv);
            }
            FileEvent::Progress { key, done, .. } => {
                if let Some((conv, row)) = self.file_row(&key) {
                    if !row.state.is_over() {
                        row.moved(done, now);
                        update.conversations.push(conv);
                    }
                }
            }
            FileEvent::Finished { key, path } => {
                let Some((conv, row)) = self.file_row(&key) else {
                    return;
                };
                let line = match &path {
                    Some(p) => format!("Received {}: saved as {}.", row.name, p.display()),
                    None => format!("{} received {}.", row.peer_name, row.name),
                };
                row.state = FileState::Saved { path };
                self.note_file(&conv, line, update);
            }
            FileEvent::Ended {
                key,
                message,
                reason: _,
            } => {
                let Some((conv, row)) = self.file_row(&key) else {
                    return;
                };
                if row.state.is_over() {
                    return;
                }
                let line = format!("{}: {message}", row.name);
                row.state = FileState::Ended { message };
                self.note_file(&conv, line, update);
            }
            FileEvent::Thumbnail { transfer, png } => {
                let key = TransferKey {
                    transfer,
                    peer: String::new(),
                    outgoing: true,
                };
                let thumb = crate::common::thumbnail::check(&png).ok();
                if let (Some((conv, row)), Some(thumb)) = (self.file_row(&key), thumb) {
                    row.thumbnail = Some(Arc::new(thumb));
                    update.conversations.push(conv);
                }
            }
            FileEvent::Refused { transfer, message } => {
                let key = TransferKey {
                    transfer,
                    peer: String::new(),
                    outgoing: true,
                };
                let Some((conv, row)) = self.file_row(&key) else {
                    return;
                };
                let line = format!("{} was not sent: {message}", row.name);
                row.state = FileState::Ended { message };
                self.note_file(&conv, line, update);
            }
        }
    }

    fn note_file(&mut self, conv: &str, text: String, update: &mut Update) {
        if let Some(c) = self.conversations.get_mut(conv) {
            c.lines.push(notice(text));
        }
        update.conversations.push(conv.to_string());
    }
}

fn notice(text: String) -> Line {
    Line::now(Author::Notice, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Profile {
        Profile {
            name: name.into(),
            color: "blue".into(),
            image_name: "image_1.png".into(),
            files: false,
        }
    }

    #[test]
    fn an_offer_opens_its_conversation_and_transfers_end_with_the_connection() {
        let mut m = ClientModel::new("client0");
        m.apply(listed(&[("client0", "me"), ("client1", "alice")]));
        let update = m.apply(SessionEvent::File(FileEvent::Offered {
            key: TransferKey {
                transfer: "t".into(),
                peer: "client1".into(),
                outgoing: false,
            },
            name: "a.txt".into(),
            size: 3,
            thumbnail: None,
            room: false,
        }));
        let key = ClientModel::key("alice");
        assert_eq!(update.incoming.as_deref(), Some(key.as_str()));
        assert_eq!(m.conversations[&key].files[0].state, FileState::Offered);
        assert!(m.conversations[&key].lines[0]
            .text
            .contains("offers a.txt (3 bytes)"));
        m.apply(SessionEvent::Lost {
            reason: "the server closed.".into(),
        });
        assert!(matches!(
            &m.conversations[&key].files[0].state,
            FileState::Ended { message } if message.contains("server closed")
        ));
    }

    fn listed(entries: &[(&str, &str)]) -> SessionEvent {
        SessionEvent::Listed(
            entries
                .iter()
                .map(|(id, n)| (id.to_string(), p(n)))
                .collect(),
        )
    }

    fn msg(from: &str, text: &str) -> SessionEvent {
        SessionEvent::Message {
            from: from.into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_list_holds_everyone_once_with_ourselves_marked() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        // The original server sends the whole list again on every join.
        m.apply(listed(&[
            ("client0", "alice"),
            ("client1", "me"),
            ("client2", "bob"),
        ]));
        let ids: Vec<&str> = m.contacts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["client0", "client1", "client2"]);
        assert!(m.contacts[1].is_me);
        assert_eq!(m.open("client1"), None, "no conversation with ourselves");
    }

    #[test]
    fn an_incoming_message_opens_its_conversation_and_counts_as_unread() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        let u = m.apply(msg("client0", "hello\n"));
        assert_eq!(u.incoming.as_deref(), Some("alice"));
        assert_eq!(m.unread("client0"), 1);
        assert_eq!(m.conversations["alice"].lines[0].text, "hello");
        m.look_at(Some("alice"));
        assert_eq!(m.unread("client0"), 0);
        m.apply(msg("client0", "again"));
        assert_eq!(m.unread("client0"), 0, "read while looking");
    }

    #[test]
    fn blank_messages_are_not_sent_and_others_go_to_the_partner() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        let key = m.open("client0").unwrap();
        assert!(!m.say(&key, "  \n\t", "b1"));
        assert!(m.say(&key, "hi", "b2"));
        let lines = &m.conversations[&key].lines;
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (&lines[0].author, lines[0].text.as_str()),
            (&Author::Me, "hi")
        );
        assert_eq!(lines[0].mark, Some(Mark::Sending), "until confirmed");
        assert_eq!(m.unsent(), [(key.clone(), "b2".into(), "hi".into())]);
    }

    #[test]
    fn a_partner_leaving_disables_the_conversation_and_coming_back_enables_it() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "Alice"), ("client1", "me")]));
        let key = m.open("client0").unwrap();
        m.apply(SessionEvent::Left {
            id: "client0".into(),
        });
        assert!(!m.conversations[&key].can_send());
        assert!(m.say(&key, "hello?", "q1"), "written all the same, to wait");
        m.apply(listed(&[("client5", "alice")]));
        let c = &m.conversations[&key];
        assert_eq!(c.partner_id.as_deref(), Some("client5"));
        let notes: Vec<&str> = c.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(notes, ["Alice left.", "hello?", "alice is back."]);
    }

    #[test]
    fn losing_the_connection_is_shown_in_every_conversation() {
        let mut m = ClientModel::new("client2");
        m.apply(listed(&[
            ("client0", "a"),
            ("client1", "b"),
            ("client2", "me"),
        ]));
        m.open("client0");
        m.open("client1");
        let u = m.apply(SessionEvent::Lost {
            reason: "Server is closing...".into(),
        });
        assert_eq!(u.lost.as_deref(), Some("Server is closing..."));
        assert_eq!(u.conversations.len(), 2);
        for c in m.conversations.values() {
            assert!(!c.can_send());
            assert_eq!(
                c.lines.last().unwrap().text,
                "Disconnected: Server is closing..."
            );
        }
        assert!(m.contacts.is_empty());
    }

    #[test]
    fn a_line_keeps_the_time_it_arrived_not_the_time_it_is_drawn() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        let before = Local::now();
        m.apply(msg("client0", "hello"));
        let after = Local::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let at = m.conversations["alice"].lines[0].at;
        assert!(before <= at && at <= after);
    }

    #[test]
    fn a_picture_replaces_the_builtin_avatar_of_its_client_only() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        m.open("client0");
        let picture = Picture {
            rgba: vec![7; 48 * 48 * 4],
        };
        let u = m.apply(SessionEvent::Picture {
            id: "client0".into(),
            picture: picture.clone(),
        });
        assert!(u.list);
        assert_eq!(u.conversations, ["alice"], "the window header shows it");
        assert_eq!(m.contacts[0].picture.as_deref(), Some(&picture));
        assert_eq!(m.contacts[1].picture, None);
        let u = m.apply(SessionEvent::Picture {
            id: "client9".into(),
            picture,
        });
        assert_eq!(u, Update::default(), "a picture of no one we know");
    }

    #[test]
    fn we_are_listed_with_our_own_picture_even_when_the_server_sends_a_stand_in() {
        let mut m = ClientModel::default();
        let mut own = p("me");
        own.image_name = "image_28.png".into();
        m.begin("client1", Some(Face::of(&own, None)));
        // An original server was sent image_17 (the stand-in) and lists us so.
        let mut listed_as = p("me");
        listed_as.image_name = "image_17.png".into();
        m.apply(SessionEvent::Listed(vec![("client1".into(), listed_as)]));
        assert_eq!(m.contacts[0].profile.image_name, "image_28.png");
    }

    #[test]
    fn conversations_outlive_a_lost_session_and_pick_up_again() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        let key = m.open("client0").unwrap();
        m.apply(msg("client0", "one"));
        m.apply(SessionEvent::Lost {
            reason: "gone".into(),
        });
        assert!(!m.connected());
        assert_eq!(m.conversations[&key].face.name, "alice", "face kept");
        m.begin("client7", None);
        m.apply(listed(&[("client5", "alice"), ("client7", "me")]));
        m.apply(msg("client5", "two"));
        let texts: Vec<&str> = m.conversations[&key]
            .lines
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(
            texts,
            ["one", "Disconnected: gone", "alice is back.", "two"]
        );
    }

    #[test]
    fn ids_are_found_after_any_mix_of_joins_and_leaves() {
        let mut m = ClientModel::new("c0");
        let names: Vec<(String, String)> = (0..50)
            .map(|i| (format!("c{i}"), format!("n{i}")))
            .collect();
        let entries: Vec<(&str, &str)> = names
            .iter()
            .map(|(id, n)| (id.as_str(), n.as_str()))
            .collect();
        m.apply(listed(&entries));
        for gone in [0usize, 7, 8, 49, 20] {
            m.apply(SessionEvent::Left {
                id: format!("c{gone}"),
            });
        }
        m.apply(listed(&[("c77", "late")]));
        for (i, c) in m.contacts.iter().enumerate() {
            assert_eq!(m.contact(&c.id).map(|f| &f.id), Some(&c.id), "row {i}");
        }
        assert!(m.contact("c7").is_none());
        assert_eq!(m.contacts.len(), 46);
        assert_eq!(m.contact("c77").unwrap().profile.name, "late");
    }

    fn chat(id: &str, name: &str, text: &str, room: bool) -> SessionEvent {
        SessionEvent::Chat(ChatIn {
            id: id.into(),
            from: None,
            name: name.into(),
            text: text.into(),
            time: 1_700_000_000_000,
            room: room.then(|| "everyone".into()),
        })
    }

    #[test]
    fn a_message_that_comes_twice_is_shown_once_and_confirmed_each_time() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        m.apply(chat("c1", "alice", "hello", false));
        m.apply(chat("c1", "alice", "hello", false));
        assert_eq!(m.conversations["alice"].lines.len(), 1);
        assert_eq!(m.conversations["alice"].unread, 1);
        let delivered: Vec<_> = m.receipts.iter().map(|r| r.2).collect();
        assert_eq!(delivered, [Delivery::Delivered, Delivery::Delivered]);
        // Read once the user looks, and only then.
        m.receipts.clear();
        m.look_at(Some("alice"));
        assert_eq!(m.receipts, [("c1".into(), "alice".into(), Delivery::Read)]);
    }

    #[test]
    fn a_kept_message_keeps_its_own_time_and_opens_a_conversation_with_someone_away() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client1", "me")]));
        m.apply(chat("c9", "Zoe", "while you were out", false));
        let c = &m.conversations["zoe"];
        assert_eq!(c.partner, "Zoe");
        assert_eq!(c.lines[0].at.timestamp_millis(), 1_700_000_000_000);
        assert!(!c.can_send(), "zoe is not here");
    }

    #[test]
    fn room_messages_go_to_the_everyone_conversation_under_their_authors_name() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        let u = m.apply(chat("r1", "alice", "hi all", true));
        assert_eq!(u.incoming.as_deref(), Some(EVERYONE_KEY));
        let line = &m.conversations[EVERYONE_KEY].lines[0];
        assert_eq!(line.author, Author::Member("alice".into()));
        assert!(m.receipts.is_empty(), "room messages are not confirmed");
        let rows = m.rows();
        assert_eq!(rows[0].0.presence, Presence::Room);
        assert_eq!(rows[0].1, 1, "its own unread count");
    }

    #[test]
    fn marks_only_move_forward() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        let key = m.open("client0").unwrap();
        m.say(&key, "hi", "s1");
        assert!(m.set_mark("s1", Mark::Kept).is_some());
        assert!(m.set_mark("s1", Mark::Read).is_some());
        assert!(
            m.set_mark("s1", Mark::Delivered).is_none(),
            "read beats delivered"
        );
        assert!(m.set_mark("s1", Mark::Failed("x".into())).is_none());
        assert_eq!(m.conversations[&key].lines[0].mark, Some(Mark::Read));
        assert!(m.unsent().is_empty());
    }

    #[test]
    fn people_away_are_listed_greyed_after_those_here_until_they_come_back() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        m.apply(SessionEvent::People(vec![Person {
            name: "Bob".into(),
            color: "red".into(),
            image_name: "image_2.png".into(),
            last_seen: 0,
        }]));
        let rows = m.rows();
        let shown: Vec<(&str, Presence)> = rows
            .iter()
            .map(|(c, _)| (c.profile.name.as_str(), c.presence))
            .collect();
        assert_eq!(
            shown,
            [
                ("Everyone", Presence::Room),
                ("alice", Presence::Here),
                ("me", Presence::Here),
                ("Bob", Presence::Away)
            ]
        );
        let key = m.open_away("Bob").unwrap();
        assert!(m.say(&key, "see you", "w1"));
        m.apply(listed(&[("client4", "bob")]));
        assert!(m.away.is_empty(), "back");
        assert_eq!(m.conversations[&key].partner_id.as_deref(), Some("client4"));
    }

    #[test]
    fn typing_shows_for_a_while_and_ends_with_the_message() {
        let mut m = ClientModel::new("client1");
        m.apply(listed(&[("client0", "alice"), ("client1", "me")]));
        m.open("client0");
        m.apply(SessionEvent::Typing {
            name: "alice".into(),
            active: true,
        });
        let now = Instant::now();
        assert!(m.conversations["alice"].typing(now));
        assert!(!m.conversations["alice"].typing(now + TYPING_SHOWN));
        m.apply(chat("t1", "alice", "done", false));
        assert!(!m.conversations["alice"].typing(now));
    }
}
