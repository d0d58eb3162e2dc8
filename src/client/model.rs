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

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Local};

use crate::client::session::SessionEvent;
use crate::common::avatar::Picture;
use crate::common::color::{self, Rgb};
use crate::common::packet::Profile;
use crate::common::profile::name_key;

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
}

/// Who wrote a line of a transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Me,
    Partner,
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
}

impl Line {
    fn now(author: Author, text: String) -> Self {
        Line {
            author,
            text,
            at: Local::now(),
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
}

impl Conversation {
    /// Whether the user can write: the partner is here.
    pub fn can_send(&self) -> bool {
        self.partner_id.is_some()
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
                    self.by_id.insert(id.clone(), self.contacts.len());
                    self.contacts.push(Contact {
                        is_me: id == self.me,
                        picture: None,
                        color: color::for_display(&profile.color),
                        id,
                        profile,
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
                let looking = self.viewing.as_deref() == Some(key.as_str());
                if let Some(c) = self.conversations.get_mut(&key) {
                    c.lines.push(Line::now(
                        Author::Partner,
                        text.strip_suffix('\n').unwrap_or(&text).to_string(),
                    ));
                    if !looking {
                        c.unread += 1;
                    }
                }
                update.list = true; // unread count
                update.conversations.push(key.clone());
                update.incoming = Some(key);
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
                    c.partner_id = None;
                    c.lines.push(notice(format!("Disconnected: {reason}")));
                    update.conversations.push(key.clone());
                }
                self.contacts.clear();
                self.by_id.clear();
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
        self.conversations
            .entry(key.clone())
            .or_insert_with(|| Conversation {
                partner: contact.profile.name.clone(),
                face: Face::of(&contact.profile, contact.picture.clone()),
                partner_id: Some(contact.id.clone()),
                lines: Vec::new(),
                unread: 0,
            });
        Some(key)
    }

    /// The user is looking at this conversation (its window has the
    /// keyboard focus), or at none: its messages are read. Returns whether
    /// an unread count changed.
    pub fn look_at(&mut self, key: Option<&str>) -> bool {
        self.viewing = key.map(str::to_string);
        key.is_some_and(|k| self.mark_read(k))
    }

    /// The user opened this conversation and sees it: its messages are
    /// read. Returns whether an unread count changed.
    pub fn mark_read(&mut self, key: &str) -> bool {
        match self.conversations.get_mut(key) {
            Some(c) if c.unread > 0 => {
                c.unread = 0;
                true
            }
            _ => false,
        }
    }

    /// The user no longer looks at this conversation (its window lost the
    /// keyboard focus or was closed).
    pub fn look_away(&mut self, key: &str) {
        if self.viewing.as_deref() == Some(key) {
            self.viewing = None;
        }
    }

    /// Records a message the user sends; returns the id to send it to, or
    /// `None` if there is nothing to send (blank) or no one to send it to.
    pub fn say(&mut self, key: &str, text: &str) -> Option<String> {
        if text.trim().is_empty() {
            return None;
        }
        let c = self.conversations.get_mut(key)?;
        let to = c.partner_id.clone()?;
        c.lines.push(Line::now(Author::Me, text.to_string()));
        Some(to)
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
        }
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
        assert_eq!(m.say(&key, "  \n\t"), None);
        assert_eq!(m.say(&key, "hi"), Some("client0".into()));
        let lines = &m.conversations[&key].lines;
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (&lines[0].author, lines[0].text.as_str()),
            (&Author::Me, "hi")
        );
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
        assert_eq!(m.say(&key, "hello?"), None);
        m.apply(listed(&[("client5", "alice")]));
        let c = &m.conversations[&key];
        assert_eq!(c.partner_id.as_deref(), Some("client5"));
        let notes: Vec<&str> = c.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(notes, ["Alice left.", "alice is back."]);
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
}
