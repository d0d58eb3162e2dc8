//! The post office: messages with ids (CHAT), their receipts, typing, and
//! messages kept for people who are away.
//!
//! The hub routes by connection; people outlast connections. A name that
//! belongs to an identity ([`crate::server::store`]) is a person: a message
//! to them is written to the store *before* anything else happens, handed
//! to their program if they are here, and deleted only once that program
//! confirms it (RECEIPT `delivered`). So a server killed at any moment
//! loses nothing that it acknowledged: the sender hears `kept` only once
//! the message is on disk, and `delivered` only from the recipient's
//! program. A message can come twice (the sender resends what was never
//! acknowledged; the server hands out again what was never confirmed): the
//! recipient's program drops repeats by sender and id, so each message is
//! shown once.
//!
//! Names without an identity (original clients, HubChat clients that did
//! not encrypt) are only reached while they are here, as before. Original
//! clients and HubChat clients before version 3 get MESSAGE, never CHAT.
//!
//! The store is only touched here, outside the hub's lock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::packet::{
    encode_people, ChatIn, ChatOut, ChatTarget, Delivery, Person, ReceiptIn, ReceiptOut,
    ServerPacket, EVERYONE,
};
use crate::common::profile::{name_key, name_keys, validate_name};
use crate::common::tls::Fingerprint;
use crate::server::event::{Party, ServerEvent};
use crate::server::hub::{Hub, Reach};
use crate::server::outbox::Outbox;
use crate::server::store::{
    FullReason, KeepOutcome, Kept, NewKept, NewReceipt, Person as StoredPerson, ReceiptState,
    Store, StoreError,
};

/// How many people who are away a newcomer is told of: the most recently
/// seen. Enough for any office; a server that has seen thousands of
/// people does not send each newcomer all of them.
pub const PEOPLE_TOLD: usize = 500;

/// How often, at most, messages kept too long are looked for (at joins).
const EXPIRE_EVERY_MS: i64 = 60_000;

/// Unix time in milliseconds: when messages arrived, as senders and
/// recipients see it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One joined client, as the post office needs to know it.
pub struct Writer<'a> {
    pub me: &'a Party,
    pub identity: Option<Fingerprint>,
    /// It speaks CHAT (version 3): only then is it told anything here.
    pub chat: bool,
    pub outbox: &'a Arc<Outbox>,
}

impl Writer<'_> {
    /// How the store knows this sender: its identity, or its name.
    fn key(&self) -> String {
        match &self.identity {
            Some(f) => f.hex(),
            None => format!("name:{}", name_key(&self.me.name)),
        }
    }

    fn tell(&self, receipt: ReceiptIn) {
        if self.chat {
            // An overflow is the outbox's to report: the writer drops it.
            let _ = self.outbox.push(&ServerPacket::Receipt(receipt).encode());
        }
    }

    fn fail(&self, id: &str, name: Option<&str>, sentence: String) {
        self.tell(ReceiptIn {
            id: id.to_string(),
            state: Delivery::Failed,
            name: name.map(str::to_string),
            message: Some(sentence),
        });
    }
}

pub struct Post<'a> {
    pub hub: &'a Hub,
    pub store: &'a Store,
    /// When kept messages were last looked at for expiry (unix ms).
    pub expired_at: &'a AtomicI64,
    /// The store's people as last read, and when.
    pub people: &'a Mutex<Option<(Instant, Vec<StoredPerson>)>>,
}

/// How long a read of the store's people serves newcomers.
const PEOPLE_FRESH: Duration = Duration::from_secs(1);

impl Post<'_> {
    /// Routes one CHAT from `from`.
    pub fn chat(&self, from: &Writer, chat: ChatOut) {
        let now = now_ms();
        match chat.to {
            ChatTarget::Everyone => {
                let frame = ServerPacket::Chat(ChatIn {
                    id: chat.id.clone(),
                    from: Some(from.me.id.to_string()),
                    name: from.me.name.to_string(),
                    text: chat.text.clone(),
                    time: now,
                    room: Some(EVERYONE.to_string()),
                })
                .encode();
                self.hub.relay_room(from.me, &frame, &chat.text);
                from.tell(ReceiptIn {
                    id: chat.id,
                    state: Delivery::Sent,
                    name: None,
                    message: None,
                });
            }
            ChatTarget::Person(name) => self.to_person(from, &chat.id, &name, chat.text, now),
        }
    }

    fn to_person(&self, from: &Writer, id: &str, name: &str, text: String, now: i64) {
        let Ok(name) = validate_name(name) else {
            return from.fail(id, None, "That is not a name anyone can have here.".into());
        };
        let owner = match self.store.owner(&name_keys(name)) {
            Ok(owner) => owner,
            Err(e) => return self.store_failed(from, id, name, &e),
        };
        let Some(binding) = owner else {
            return self.live_only(from, id, name, text, now);
        };
        let (sender, sender_identity) = (from.key(), from.identity.map(|f| f.hex()));
        let kept = NewKept {
            recipient: &binding.identity,
            sender: &sender,
            sender_name: &from.me.name,
            sender_identity: sender_identity.as_deref(),
            msg_id: id,
            text: &text,
            sent_at: now,
        };
        match self.store.keep(&kept, now) {
            Ok(KeepOutcome::Kept | KeepOutcome::AlreadyKept) => {}
            Ok(KeepOutcome::Full(reason)) => {
                return from.fail(
                    id,
                    Some(&binding.name),
                    full_sentence(&binding.name, reason),
                )
            }
            // Forgotten between the two look-ups (to make room): reached
            // only while here, like anyone the server does not know.
            Ok(KeepOutcome::UnknownRecipient) => return self.live_only(from, id, name, text, now),
            Err(e) => return self.store_failed(from, id, name, &e),
        }
        // Every program of that person but the sender's own (one person
        // may write from one of their programs to another).
        let mut here = Fingerprint::from_hex(&binding.identity)
            .map(|f| self.hub.find_identity(&f))
            .unwrap_or_default();
        here.retain(|r| r.who.id != from.me.id);
        if here.is_empty() {
            self.hub.emit(ServerEvent::Relayed {
                from: from.me.clone(),
                to: pseudo(format!("{} (away: kept)", binding.name)),
                text,
            });
            return from.tell(ReceiptIn {
                id: id.to_string(),
                state: Delivery::Kept,
                name: Some(binding.name.clone()),
                message: None,
            });
        }
        for reach in here {
            self.hand_over(from, id, &reach, &text, now);
            if !reach.chat {
                // A program that cannot confirm: this is as delivered as
                // it gets, so the store lets go of it.
                let _ = self.store.delivered(&binding.identity, &from.key(), id);
            }
        }
    }

    /// A name no identity owns: reached only while here.
    fn live_only(&self, from: &Writer, id: &str, name: &str, text: String, now: i64) {
        match self.hub.find_name(name) {
            Some(reach) => self.hand_over(from, id, &reach, &text, now),
            None => from.fail(
                id,
                Some(name),
                format!(
                    "{name} is not here, and this server does not know them (they never \
                     joined with an encrypted HubChat), so it cannot keep the message for later."
                ),
            ),
        }
    }

    /// Gives a message to a client that is here: as CHAT to one that
    /// confirms (the sender hears from it), as MESSAGE to one that cannot
    /// (the sender hears `sent` now).
    fn hand_over(&self, from: &Writer, id: &str, reach: &Reach, text: &str, now: i64) {
        if reach.chat {
            let frame = ServerPacket::Chat(ChatIn {
                id: id.to_string(),
                from: Some(from.me.id.to_string()),
                name: from.me.name.to_string(),
                text: text.to_string(),
                time: now,
                room: None,
            })
            .encode();
            if self.hub.send_chat_frame(&reach.who.id, &frame) {
                self.hub.emit(ServerEvent::Relayed {
                    from: from.me.clone(),
                    to: reach.who.clone(),
                    text: text.to_string(),
                });
            }
        } else if self
            .hub
            .relay(from.me, &reach.who.id, text.to_string(), None)
            .is_ok()
        {
            from.tell(ReceiptIn {
                id: id.to_string(),
                state: Delivery::Sent,
                name: Some(reach.who.name.to_string()),
                message: None,
            });
        }
    }

    fn store_failed(&self, from: &Writer, id: &str, name: &str, e: &StoreError) {
        self.hub.emit(ServerEvent::Error {
            message: format!("could not keep a message for {name}: {e}"),
        });
        from.fail(
            id,
            Some(name),
            "The server could not store the message (its database failed); it was not sent. \
             Try again later."
                .into(),
        );
    }

    /// A receipt from `from` (the recipient) about a message from `to_name`.
    pub fn receipt(&self, from: &Writer, receipt: ReceiptOut) {
        if !matches!(receipt.state, Delivery::Delivered | Delivery::Read) {
            return;
        }
        // Only a confirmation that matches a message kept for this very
        // recipient is kept for a sender who is away: anything else could
        // be made up, and would cost a write to disk each.
        let owner = validate_name(&receipt.to_name)
            .ok()
            .and_then(|name| self.store.owner(&name_keys(name)).ok().flatten())
            .map(|b| b.identity);
        let mut kept_sender = None;
        if let (Delivery::Delivered, Some(me)) = (receipt.state, &from.identity) {
            // The sender is known to the store by its identity if its name
            // is bound, else by its name.
            let by_name = format!("name:{}", name_key(&receipt.to_name));
            for sender in owner.iter().chain([&by_name]) {
                if let Ok(Some(kept)) = self.store.delivered(&me.hex(), sender, &receipt.id) {
                    kept_sender = kept.sender_identity;
                    break;
                }
            }
        }
        let sender_identity = kept_sender.clone().or(owner);
        let told = ReceiptIn {
            id: receipt.id.clone(),
            state: receipt.state,
            name: Some(from.me.name.to_string()),
            message: None,
        };
        let frame = ServerPacket::Receipt(told).encode();
        let here = match sender_identity.as_deref().and_then(Fingerprint::from_hex) {
            Some(f) => self.hub.find_identity(&f),
            None => self.hub.find_name(&receipt.to_name).into_iter().collect(),
        };
        let mut reached = false;
        for reach in here.iter().filter(|r| r.chat && r.who.id != from.me.id) {
            reached |= self.hub.send_chat_frame(&reach.who.id, &frame);
        }
        if !reached {
            if let Some(identity) = &kept_sender {
                let _ = self.store.keep_receipt(&NewReceipt {
                    recipient: identity,
                    about_name: &from.me.name,
                    msg_id: &receipt.id,
                    state: ReceiptState::Delivered,
                    detail: "",
                    at: now_ms(),
                });
            }
        }
    }

    /// `from` is typing to `to_name`, or stopped: passed on only while both
    /// are here.
    pub fn typing(&self, from: &Writer, to_name: &str, active: bool) {
        if let Some(reach) = self.hub.find_name(to_name).filter(|r| r.chat) {
            let frame = ServerPacket::Typing {
                name: from.me.name.to_string(),
                active,
            }
            .encode();
            self.hub.send_chat_frame(&reach.who.id, &frame);
        }
    }

    /// A client has joined: a HubChat client of version 3 is told who is
    /// away, then given what was kept for it while it was away, oldest
    /// first with its original time, then the receipts kept for it.
    pub fn joined(&self, who: &Writer) {
        let now = now_ms();
        self.expire(now);
        if !who.chat {
            return;
        }
        let people = self.away(who.identity.as_ref());
        if !people.is_empty() {
            let _ = who.outbox.push(&encode_people(&people));
        }
        let Some(me) = who.identity else { return };
        let Ok(kept) = self.store.kept_for(&me.hex()) else {
            return;
        };
        for message in kept {
            let from = self.hub.find_name(&message.sender_name).map(|r| r.who);
            let frame = ServerPacket::Chat(ChatIn {
                id: message.msg_id.clone(),
                from: from.as_ref().map(|p| p.id.to_string()),
                name: message.sender_name.clone(),
                text: message.text.clone(),
                time: message.sent_at,
                room: None,
            })
            .encode();
            let _ = who.outbox.push(&frame);
            self.hub.emit(ServerEvent::Relayed {
                from: from.unwrap_or_else(|| pseudo(format!("{} (kept)", message.sender_name))),
                to: who.me.clone(),
                text: message.text,
            });
        }
        for r in self.store.take_receipts(&me.hex()).unwrap_or_default() {
            let _ = who.outbox.push(
                &ServerPacket::Receipt(ReceiptIn {
                    id: r.msg_id,
                    state: match r.state {
                        ReceiptState::Delivered => Delivery::Delivered,
                        ReceiptState::Read => Delivery::Read,
                        ReceiptState::Failed => Delivery::Failed,
                    },
                    name: Some(r.about_name),
                    message: (!r.detail.is_empty()).then_some(r.detail),
                })
                .encode(),
            );
        }
    }

    /// A client has left (the hub has told everyone): if it is a person
    /// (its name belongs to its identity), the others see it stay in their
    /// list as away, and those waiting on its confirmation hear that their
    /// messages are kept.
    pub fn left(&self, who: &Party, identity: Option<Fingerprint>, color: &str, image: &str) {
        let Some(me) = identity else { return };
        // How they looked, for the list of people away: written as they
        // leave, when it starts to matter, rather than at the join, where
        // a second write would make every join wait for the disk twice.
        let _ = self
            .store
            .remember_profile(&me.hex(), &who.name, color, image, now_ms() / 1000);
        let owned = validate_name(&who.name)
            .ok()
            .and_then(|n| self.store.owner(&name_keys(n)).ok().flatten())
            .is_some_and(|b| b.identity == me.hex());
        if !owned || !self.hub.find_identity(&me).is_empty() {
            return;
        }
        if let Ok(mut cache) = self.people.lock() {
            *cache = None; // they are among the people now, or moved up
        }
        let person = Person {
            name: who.name.to_string(),
            color: color.to_string(),
            image_name: image.to_string(),
            last_seen: now_ms(),
        };
        self.hub.tell_chat_clients(&encode_people(&[person]), None);
        for kept in self.store.kept_for(&me.hex()).unwrap_or_default() {
            if let Some(sender) = self.hub.find_name(&kept.sender_name).filter(|r| r.chat) {
                let frame = ServerPacket::Receipt(ReceiptIn {
                    id: kept.msg_id,
                    state: Delivery::Kept,
                    name: Some(who.name.to_string()),
                    message: None,
                })
                .encode();
                self.hub.send_chat_frame(&sender.who.id, &frame);
            }
        }
    }

    /// People who have been here and are not now, most recently seen first.
    fn away(&self, me: Option<&Fingerprint>) -> Vec<Person> {
        let mine = me.map(Fingerprint::hex);
        let here = self.hub.identities();
        self.people()
            .into_iter()
            .filter(|p| Some(&p.identity) != mine.as_ref())
            .filter(|p| Fingerprint::from_hex(&p.identity).is_none_or(|f| !here.contains(&f)))
            .map(|p| Person {
                name: p.name,
                color: p.color,
                image_name: p.image_name,
                last_seen: p.last_seen.saturating_mul(1000),
            })
            .collect()
    }

    /// The store's people, read at most once a second: in a storm of
    /// joins every newcomer is told who is away, and one read serves them
    /// all. (Who of them is here is checked for each newcomer.)
    fn people(&self) -> Vec<StoredPerson> {
        let mut cache = self
            .people
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = cache
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < PEOPLE_FRESH);
        if !fresh {
            let read = self.store.people(PEOPLE_TOLD).unwrap_or_default();
            *cache = Some((Instant::now(), read));
        }
        cache.as_ref().map(|(_, p)| p.clone()).unwrap_or_default()
    }

    /// Lets go of messages kept too long, telling their senders (now if
    /// here, else when they come back). At most once a minute.
    fn expire(&self, now: i64) {
        let last = self.expired_at.load(Ordering::Relaxed);
        if now - last < EXPIRE_EVERY_MS
            || self
                .expired_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for kept in self.store.expire(now).unwrap_or_default() {
            self.expired(kept, now);
        }
    }

    fn expired(&self, kept: Kept, now: i64) {
        let days = self.store.limits().kept_for.as_secs() / (24 * 60 * 60);
        let detail = format!("the recipient did not come back within {days} days.");
        let frame = ServerPacket::Receipt(ReceiptIn {
            id: kept.msg_id.clone(),
            state: Delivery::Failed,
            name: None,
            message: Some(detail.clone()),
        })
        .encode();
        let told = self
            .hub
            .find_name(&kept.sender_name)
            .is_some_and(|r| self.hub.send_chat_frame(&r.who.id, &frame));
        if let (false, Some(identity)) = (told, &kept.sender_identity) {
            let _ = self.store.keep_receipt(&NewReceipt {
                recipient: identity,
                about_name: "",
                msg_id: &kept.msg_id,
                state: ReceiptState::Failed,
                detail: &detail,
                at: now,
            });
        }
    }
}

/// The sentence a sender gets when the store keeps no more for `name`.
fn full_sentence(name: &str, reason: FullReason) -> String {
    match reason {
        FullReason::Messages { limit } => format!(
            "Not kept: {name} is away and has {limit} messages waiting already, as many as \
             the server keeps for one person. Try again when they are back."
        ),
        FullReason::Text { limit_bytes } => format!(
            "Not kept: {name} is away and has {} MiB of messages waiting already, as much as \
             the server keeps for one person. Try again when they are back.",
            limit_bytes / (1024 * 1024)
        ),
        FullReason::ServerMessages { limit } => format!(
            "Not kept: the server keeps at most {limit} messages for people who are away, \
             and is full. Try again when {name} is back."
        ),
        FullReason::ServerText { limit_bytes } => format!(
            "Not kept: the server keeps at most {} MiB of messages for people who are away, \
             and is full. Try again when {name} is back.",
            limit_bytes / (1024 * 1024)
        ),
    }
}

/// A party for the log that is not a connected client.
fn pseudo(name: String) -> Party {
    Party {
        id: "".into(),
        name: name.into(),
        color: "gray".into(),
    }
}
