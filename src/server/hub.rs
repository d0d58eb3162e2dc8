//! The registry of joined clients, and every decision about who hears what.
//!
//! One mutex guards the registry. Every operation under it is short (a map
//! look-up and appends to outboxes, never a socket write), so a plain lock is
//! both simpler and faster here than anything finer: the lock is held for
//! microseconds while the slow part, sending, happens on each client's own
//! writer thread. Holding one lock for joins, leaves and relays also gives
//! every client the same order of events: nobody hears from a client before
//! it appears in their list, or after its DISCONNECT.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::common::file_packet::{
    describe_size, encode_data_from, DataIn, FileMsg, FilePacket, Offer, FILE_VERSION,
    MAX_OFFER_NAME, MAX_THUMBNAIL,
};
use crate::common::packet::{
    all_clients_entries, all_clients_from_entries, client_number, encode_all_clients,
    encode_message, ErrorCode, ErrorReport, Info, Profile, ServerPacket, Welcome, CHAT_VERSION,
    EVERYONE, PROTOCOL_VERSION,
};
use crate::common::profile::{self, name_key, name_keys, validate_name, TakenNames};
use crate::common::tls::Fingerprint;
use crate::server::budget::Budget;
use crate::server::event::{Events, LeaveReason, Party, ServerEvent};
use crate::server::outbox::{Deferred, Outbox};
use crate::server::transfers::{Chunk, Route, Transfers};

/// Why a client was not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    /// A sentence for the person using the refused client.
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn reason(&self) -> LeaveReason {
        LeaveReason::Refused {
            code: self.code,
            detail: self.message.clone(),
        }
    }
}

/// Refuses a profile whose colour or picture names break the limits, so no
/// client can make the server keep, and copy into every roster, megabytes
/// of "colour". Unknown fields never get this far: INFO decodes to the
/// known ones only, so they are neither kept nor relayed.
fn check_profile(info: &Info) -> Result<(), Refusal> {
    let real_image = info.hubchat.as_ref().and_then(|h| h.image_name.as_deref());
    profile::validate_color(&info.color)
        .and_then(|()| profile::validate_image_name(&info.image_name))
        .and_then(|()| real_image.map_or(Ok(()), profile::validate_image_name))
        .map_err(|e| Refusal::new(ErrorCode::ProfileInvalid, e.to_string()))
}

/// The message named a client that is not connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPartner;

pub struct Hub {
    registry: Mutex<Registry>,
    events: Events,
    max_clients: usize,
    /// Told to HubChat clients in their welcome.
    max_packet: usize,
    /// The longest message text relayed; told in the welcome too.
    max_message: usize,
    /// Every byte queued for clients, counted together.
    budget: Budget,
    /// When the budget is full, clients that have left bytes waiting this
    /// long are dropped (see [`Hub::relieve`]).
    shed_after: Duration,
    /// The largest file passed on; told in the welcome too.
    max_file: u64,
    /// Files on offer and on their way. Locked after the registry when
    /// both are (a client leaving), never the other way round.
    files: Mutex<Transfers>,
}

/// What a [`Hub`] needs to know beside its event queue.
pub struct HubLimits {
    pub max_clients: usize,
    pub max_packet: usize,
    pub max_message: usize,
    pub max_file: u64,
    pub budget: Budget,
    pub shed_after: Duration,
}

#[derive(Default)]
struct Registry {
    /// Keyed by the number in `client<k>`: ordered by join, cheap to find.
    members: BTreeMap<u64, Member>,
    /// Names in use, so "Alice" or "аlice" cannot join beside "alice".
    names: TakenNames,
    /// Members by the key of their name ([`name_key`]), for messages
    /// addressed by name.
    by_name: HashMap<String, u64>,
    next_id: u64,
    closed: bool,
    /// Everyone's roster entries, encoded once, for newcomers.
    roster: RosterCache,
}

/// Every member's ALL CLIENTS entry, encoded as each joined and kept in
/// join order, once as HubChat peers see it and once as original peers do:
/// a newcomer's roster is then a copy, not thousands of profiles encoded
/// again (10,000 joins would encode 50 million entries). A departure
/// leaves it stale; the next join rebuilds it from the members.
#[derive(Default)]
struct RosterCache {
    hubchat: Vec<u8>,
    original: Vec<u8>,
    stale: bool,
}

impl RosterCache {
    fn entries(&self, hubchat_receiver: bool) -> &[u8] {
        if hubchat_receiver {
            &self.hubchat
        } else {
            &self.original
        }
    }

    /// Adds a newcomer's entries (from its one-entry rosters).
    fn add(&mut self, for_hubchat: &[u8], for_original: &[u8]) {
        for (list, frame) in [
            (&mut self.hubchat, for_hubchat),
            (&mut self.original, for_original),
        ] {
            if let Some(entry) = all_clients_entries(frame) {
                if !list.is_empty() {
                    list.extend_from_slice(b", ");
                }
                list.extend_from_slice(entry);
            }
        }
    }

    /// Encodes everyone's entries afresh, if a departure left them stale.
    fn refresh(&mut self, members: &BTreeMap<u64, Member>) {
        if !self.stale {
            return;
        }
        *self = RosterCache::default();
        for m in members.values() {
            self.add(&m.roster.0, &m.roster.1);
        }
    }
}

/// When a queued frame wakes its receiver's writer.
#[derive(Clone, Copy)]
enum Wake {
    Now,
    /// Within `outbox::LATER`, with the rest of a burst.
    Later,
}

impl Registry {
    /// Queues a frame for each member `frame_for` gives one (by number and
    /// member; `None` skips it). Returns the members whose queue overflowed.
    fn tell<'f>(
        &self,
        wake: Wake,
        frame_for: impl Fn(u64, &Member) -> Option<&'f [u8]>,
    ) -> Vec<u64> {
        self.members
            .iter()
            .filter_map(|(&k, m)| {
                let frame = frame_for(k, m)?;
                let pushed = match wake {
                    Wake::Now => m.outbox.push(frame),
                    Wake::Later => m.outbox.push_later(frame),
                };
                pushed.is_err().then_some(k)
            })
            .collect()
    }
}

struct Member {
    who: Party,
    /// Cleared as the client leaves, before anyone is told: frames from it
    /// sent outside the registry's lock check it (see
    /// [`Outbox::push_from`]).
    here: Arc<AtomicBool>,
    /// The profile as the client gave it; HubChat peers see this.
    profile: Profile,
    hubchat: bool,
    /// It speaks CHAT, RECEIPT, TYPING and PEOPLE (version 3 or later).
    chat: bool,
    /// It sends and receives files (version 4 or later).
    files: bool,
    outbox: Arc<Outbox>,
    /// Its one-entry ALL CLIENTS frames, as HubChat and as original peers
    /// see it.
    roster: (Arc<[u8]>, Arc<[u8]>),
    /// The client's PICTURE frame, for HubChat peers, once it sent one.
    picture: Option<Arc<Vec<u8>>>,
    /// Where it connected from, and the certificate it showed (encrypted
    /// clients only): what the owner can ban.
    addr: SocketAddr,
    identity: Option<Fingerprint>,
}

/// A joined client as a message addressed by name finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub who: Party,
    /// It speaks CHAT and RECEIPT (version 3): it confirms what it gets.
    pub chat: bool,
    /// The certificate it showed, if encrypted.
    pub identity: Option<Fingerprint>,
}

/// A joined client as the owner sees it, to kick or ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub who: Party,
    pub addr: SocketAddr,
    pub identity: Option<Fingerprint>,
}

/// How long a kicked client has to read why before its connection is cut.
const KICK_LINGER: Duration = Duration::from_secs(2);

/// What original clients, which know no rooms, see before a message to
/// the Everyone room.
pub const EVERYONE_PREFIX: &str = "[Everyone] ";

impl Member {
    fn reach(&self) -> Reach {
        Reach {
            who: self.who.clone(),
            chat: self.chat,
            identity: self.identity,
        }
    }
}

impl Hub {
    pub fn new(events: Events, limits: HubLimits) -> Self {
        Hub {
            registry: Mutex::new(Registry::default()),
            events,
            max_clients: limits.max_clients,
            max_packet: limits.max_packet,
            max_message: limits.max_message,
            budget: limits.budget,
            shed_after: limits.shed_after,
            max_file: limits.max_file,
            files: Mutex::new(Transfers::default()),
        }
    }

    /// When the budget is full, and nobody did so in the last moment, drops
    /// the clients that have left bytes waiting for `shed_after` (they are
    /// not reading), largest queue first, until the budget is free again. A
    /// client that reads takes its queue within moments, so it stays.
    pub fn relieve(&self) {
        if !self.budget.is_full() || !self.budget.sweep_due() {
            return;
        }
        let now = Instant::now();
        let mut reg = self.lock();
        let mut stuck: Vec<(usize, u64)> = reg
            .members
            .iter()
            .filter_map(|(&k, m)| m.outbox.stuck(now, self.shed_after).map(|held| (held, k)))
            .collect();
        stuck.sort_unstable_by(|a, b| b.cmp(a));
        for (_, k) in stuck {
            if !self.budget.is_full() {
                break;
            }
            self.drop_overflowed(&mut reg, vec![k]);
        }
    }

    /// Admits a client that answered the INFO request.
    ///
    /// A HubChat newcomer is first sent WELCOME. Then the newcomer is sent
    /// the whole roster (itself included) and everyone else a roster holding
    /// only the newcomer, so a join costs O(N).
    pub fn join(
        &self,
        info: &Info,
        addr: SocketAddr,
        outbox: Arc<Outbox>,
        identity: Option<Fingerprint>,
    ) -> Result<Party, Refusal> {
        let name = validate_name(&info.name)
            .map_err(|e| Refusal::new(ErrorCode::NameInvalid, e.to_string()))?;
        check_profile(info)?;
        let key = name_keys(name);
        let hubchat = info.hubchat.is_some();
        let chat = info
            .hubchat
            .as_ref()
            .is_some_and(|h| h.version >= CHAT_VERSION);
        let files = info
            .hubchat
            .as_ref()
            .is_some_and(|h| h.version >= FILE_VERSION);
        self.relieve();
        if self.budget.is_full() {
            return Err(Refusal::new(
                ErrorCode::ServerFull,
                format!(
                    "The server is busy: as much as it holds for clients ({}) is waiting to \
                     be sent. Try again in a few seconds.",
                    self.budget.describe_limit()
                ),
            ));
        }
        let profile = Profile {
            name: name.to_string(),
            ..info.profile()
        };
        // Original peers see the picture INFO names for them, never the
        // HubChat-only one carried in the `hubchat` field.
        let original_profile = profile::for_original(&Profile {
            image_name: info.image_name.clone(),
            ..profile.clone()
        });

        let mut reg = self.lock();
        if reg.closed {
            return Err(Refusal::new(
                ErrorCode::ServerFull,
                "The server is stopping.",
            ));
        }
        if reg.members.len() >= self.max_clients {
            return Err(Refusal::new(
                ErrorCode::ServerFull,
                format!(
                    "The server is full ({} clients). Try again later.",
                    self.max_clients
                ),
            ));
        }
        if let Err(taken) = reg.names.check(&key) {
            return Err(Refusal::new(ErrorCode::NameTaken, taken.to_string()));
        }

        let k = reg.next_id;
        reg.next_id += 1;
        let who = Party {
            id: format!("client{k}").into(),
            name: name.into(),
            color: profile.color.as_str().into(),
        };
        // Its roster entry, encoded once per kind of peer: newcomers
        // arriving together reach everyone as one roster.
        let one = |p: &Profile| -> Arc<[u8]> { encode_all_clients(&[(&who.id, p)]).into() };
        let (for_hubchat, for_original) = (one(&profile), one(&original_profile));
        let member = Member {
            who: who.clone(),
            here: Arc::new(AtomicBool::new(true)),
            profile,
            hubchat,
            chat,
            files,
            outbox,
            roster: (for_hubchat.clone(), for_original.clone()),
            picture: None,
            addr,
            identity,
        };

        // The newcomer's welcome, its roster (everyone, then itself) and
        // everyone's pictures, sent in one go.
        let mut hello = Vec::new();
        if hubchat {
            let welcome = ServerPacket::Welcome(Welcome {
                version: PROTOCOL_VERSION,
                id: who.id.to_string(),
                max_packet: self.max_packet,
                max_message: Some(self.max_message),
                // A server whose owner passes no files says nothing: its
                // clients then offer none.
                max_file: (self.max_file > 0).then_some(self.max_file),
            });
            hello.extend_from_slice(&welcome.encode());
        }
        let r = &mut *reg;
        r.roster.refresh(&r.members);
        let own = if hubchat { &for_hubchat } else { &for_original };
        hello.extend_from_slice(&all_clients_from_entries(&[
            reg.roster.entries(hubchat),
            all_clients_entries(own).unwrap_or_default(),
        ]));
        if hubchat {
            for frame in reg.members.values().filter_map(|m| m.picture.as_ref()) {
                hello.extend_from_slice(frame);
            }
        }
        let newcomer_overflowed = member.outbox.push(&hello).is_err();

        let mut dropped: Vec<u64> = reg
            .members
            .iter()
            .filter_map(|(&k, m)| {
                let roster = if m.hubchat {
                    &for_hubchat
                } else {
                    &for_original
                };
                m.outbox.push_roster(roster).is_err().then_some(k)
            })
            .collect();
        reg.roster.add(&for_hubchat, &for_original);

        self.events.emit(ServerEvent::Joined {
            who: who.clone(),
            image_name: member.profile.image_name.clone(),
            addr,
            hubchat,
            identity,
        });
        reg.names.insert(key);
        reg.by_name.insert(name_key(name), k);
        reg.members.insert(k, member);
        if newcomer_overflowed {
            dropped.push(k);
        }
        self.drop_overflowed(&mut reg, dropped);
        Ok(who)
    }

    /// Routes a message to the client with id `to`, stamped with the
    /// sender's own id so no client can pose as another.
    ///
    /// The registry is locked only to look the receiver up: the frame is
    /// written to its socket after, so senders do not queue behind each
    /// other's system calls.
    ///
    /// With `deferred`, the frame is only queued, and written when the
    /// caller sends what it deferred (see [`Outbox::push_deferred`]).
    pub fn relay(
        &self,
        from: &Party,
        to: &str,
        text: String,
        deferred: Option<&mut Deferred>,
    ) -> Result<(), UnknownPartner> {
        let Some(k) = client_number(to) else {
            return self.undeliverable(from, to);
        };
        let found = {
            let reg = self.lock();
            let here = client_number(&from.id)
                .and_then(|me| reg.members.get(&me))
                .map(|m| m.here.clone());
            reg.members
                .get(&k)
                .map(|dest| (dest.outbox.clone(), dest.hubchat, dest.who.clone(), here))
        };
        let Some((outbox, hubchat, to_party, here)) = found else {
            return self.undeliverable(from, to);
        };
        // The original client shows text verbatim and expects one trailing
        // newline; without it the next message runs into this one.
        let frame = if !hubchat && !text.ends_with('\n') {
            encode_message(&from.id, to, &format!("{text}\n"))
        } else {
            encode_message(&from.id, to, &text)
        };
        let pushed = match deferred {
            Some(deferred) => outbox.push_deferred(&frame, here.as_deref(), deferred),
            None => outbox.push_from(&frame, here.as_deref()),
        };
        if pushed.is_err() {
            self.drop_overflowed_outbox(k, &outbox);
        }
        self.events.emit(ServerEvent::Relayed {
            from: from.clone(),
            to: to_party,
            text,
        });
        Ok(())
    }

    /// Drops client `k` for an overflow of `outbox`, if it is still the
    /// client that outbox belongs to.
    fn drop_overflowed_outbox(&self, k: u64, outbox: &Arc<Outbox>) {
        let mut reg = self.lock();
        if reg
            .members
            .get(&k)
            .is_some_and(|m| Arc::ptr_eq(&m.outbox, outbox))
        {
            self.drop_overflowed(&mut reg, vec![k]);
        }
    }

    /// The joined client whose name has the same key as `name` (case and
    /// look-alikes aside), if any.
    pub fn find_name(&self, name: &str) -> Option<Reach> {
        let reg = self.lock();
        let k = reg.by_name.get(&name_key(name))?;
        reg.members.get(k).map(Member::reach)
    }

    /// Every joined client showing this certificate (one person may be
    /// connected from two programs, under two of their names).
    pub fn find_identity(&self, identity: &Fingerprint) -> Vec<Reach> {
        let reg = self.lock();
        reg.members
            .values()
            .filter(|m| m.identity.as_ref() == Some(identity))
            .map(Member::reach)
            .collect()
    }

    /// The certificates of everyone here.
    pub fn identities(&self) -> std::collections::HashSet<Fingerprint> {
        let reg = self.lock();
        reg.members.values().filter_map(|m| m.identity).collect()
    }

    /// Queues `frame` (a CHAT, RECEIPT, TYPING or PEOPLE) for the client
    /// `id`, if it is here and speaks them; says whether it was queued.
    pub fn send_chat_frame(&self, id: &str, frame: &[u8]) -> bool {
        let Some(k) = client_number(id) else {
            return false;
        };
        let mut reg = self.lock();
        let Some(member) = reg.members.get(&k).filter(|m| m.chat) else {
            return false;
        };
        if member.outbox.push(frame).is_err() {
            self.drop_overflowed(&mut reg, vec![k]);
        }
        true
    }

    /// Queues `frame` for every client that speaks CHAT but `except`.
    pub fn tell_chat_clients(&self, frame: &[u8], except: Option<&str>) {
        let except = except.and_then(client_number);
        let mut reg = self.lock();
        let dropped = reg.tell(Wake::Later, |k, m| {
            (m.chat && Some(k) != except).then_some(frame)
        });
        self.drop_overflowed(&mut reg, dropped);
    }

    /// Relays a message to the Everyone room: every other client. Those
    /// that speak CHAT get `chat_frame`; the others, which know no rooms,
    /// a MESSAGE from the sender prefixed `[Everyone] ` (with the newline
    /// an original client expects), to which they answer the sender alone.
    /// Returns how many it went to.
    pub fn relay_room(&self, from: &Party, chat_frame: &[u8], text: &str) -> usize {
        let Some(me) = client_number(&from.id) else {
            return 0;
        };
        let prefixed = format!("{EVERYONE_PREFIX}{text}");
        let mut reg = self.lock();
        let mut plain: HashMap<u64, Vec<u8>> = HashMap::new();
        for (&k, m) in reg.members.iter().filter(|(&k, m)| k != me && !m.chat) {
            let text = if !m.hubchat && !prefixed.ends_with('\n') {
                format!("{prefixed}\n")
            } else {
                prefixed.clone()
            };
            plain.insert(k, encode_message(&from.id, &m.who.id, &text));
        }
        let count = reg.members.len().saturating_sub(1);
        let dropped = reg.tell(Wake::Now, |k, m| {
            if k == me {
                None
            } else if m.chat {
                Some(chat_frame)
            } else {
                plain.get(&k).map(|f| &f[..])
            }
        });
        self.drop_overflowed(&mut reg, dropped);
        drop(reg);
        self.events.emit(ServerEvent::Relayed {
            from: from.clone(),
            to: Party {
                id: EVERYONE.into(),
                name: EVERYONE.into(),
                color: "gray".into(),
            },
            text: text.to_string(),
        });
        count
    }

    /// Reports an event (for the post office, which works beside the hub).
    pub fn emit(&self, event: ServerEvent) {
        self.events.emit(event);
    }

    /// Keeps a client's avatar picture (already checked) and passes it to
    /// every other HubChat client; original clients never see it.
    pub fn set_picture(&self, who: &Party, png: Vec<u8>) {
        let Some(k) = client_number(&who.id) else {
            return;
        };
        let frame = Arc::new(
            ServerPacket::Picture {
                id: who.id.to_string(),
                png: png.clone(),
            }
            .encode(),
        );
        let mut reg = self.lock();
        let Some(member) = reg.members.get_mut(&k) else {
            return;
        };
        member.picture = Some(frame.clone());
        let dropped = reg.tell(Wake::Now, |other, m| {
            (other != k && m.hubchat).then_some(&frame[..])
        });
        self.events.emit(ServerEvent::Pictured {
            who: who.clone(),
            png,
        });
        self.drop_overflowed(&mut reg, dropped);
    }

    fn undeliverable(&self, from: &Party, to: &str) -> Result<(), UnknownPartner> {
        self.events.emit(ServerEvent::Undeliverable {
            from: from.clone(),
            to: to.to_string(),
        });
        Err(UnknownPartner)
    }

    /// Removes a client and tells everyone else, once: later calls for the
    /// same client (its reader ending after an overflow, say) do nothing.
    pub fn remove(&self, id: &str, reason: LeaveReason) {
        if let Some(k) = client_number(id) {
            let mut reg = self.lock();
            self.remove_locked(&mut reg, k, reason);
        }
    }

    /// The joined client with this id, if any.
    pub fn present(&self, id: &str) -> Option<Present> {
        let k = client_number(id)?;
        let reg = self.lock();
        reg.members.get(&k).map(|m| Present {
            who: m.who.clone(),
            addr: m.addr,
            identity: m.identity,
        })
    }

    /// Every joined client the predicate picks.
    pub fn present_where(&self, pick: impl Fn(&Present) -> bool) -> Vec<Present> {
        let reg = self.lock();
        reg.members
            .values()
            .map(|m| Present {
                who: m.who.clone(),
                addr: m.addr,
                identity: m.identity,
            })
            .filter(|p| pick(p))
            .collect()
    }

    /// Removes a client on the owner's word, telling it `message` (in
    /// ERROR form for HubChat, SERVER CLOSE for original clients) and the
    /// others that it left. Its connection is cut after a moment in which
    /// to read why. Says whether the client was there.
    pub fn kick(&self, id: &str, code: ErrorCode, message: &str) -> bool {
        let Some(k) = client_number(id) else {
            return false;
        };
        let mut reg = self.lock();
        let Some(member) = reg.members.get(&k) else {
            return false;
        };
        let notice = if member.hubchat {
            ServerPacket::Error(ErrorReport {
                code,
                message: message.to_string(),
            })
        } else {
            ServerPacket::ServerClose {
                message: message.to_string(),
            }
        };
        let outbox = member.outbox.clone();
        let _ = outbox.push(&notice.encode());
        outbox.finish();
        let reason = LeaveReason::Refused {
            code,
            detail: message.to_string(),
        };
        self.remove_locked(&mut reg, k, reason.clone());
        drop(reg);
        // A client that does not close when told would keep its reader
        // thread; cut it after the linger (one short thread per kick: the
        // owner's clicks are few).
        let _ = std::thread::Builder::new()
            .name("kick".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                std::thread::sleep(KICK_LINGER);
                outbox.abort(reason);
            });
        true
    }

    /// Forgets every client without telling anyone: the server is stopping
    /// and sends each connection SERVER CLOSE itself. Later joins are refused.
    pub fn close(&self) {
        let mut reg = self.lock();
        reg.closed = true;
        reg.members.clear();
        reg.roster = RosterCache::default();
        reg.names.clear();
        reg.by_name.clear();
    }

    /// Whether the server has stopped admitting clients.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many clients have joined and not left.
    pub fn client_count(&self) -> usize {
        self.lock().members.len()
    }

    fn remove_locked(&self, reg: &mut Registry, k: u64, reason: LeaveReason) {
        let dropped = self.remove_one(reg, k, reason);
        self.drop_overflowed(reg, dropped);
    }

    /// Removes one client and tells the others; returns those whose queues
    /// overflowed on being told.
    fn remove_one(&self, reg: &mut Registry, k: u64, reason: LeaveReason) -> Vec<u64> {
        let Some(gone) = reg.members.remove(&k) else {
            return Vec::new();
        };
        gone.here.store(false, Ordering::Release);
        reg.roster.stale = true;
        reg.names.remove(&gone.who.name);
        reg.by_name.remove(&name_key(&gone.who.name));
        let frame = ServerPacket::Disconnect {
            id: gone.who.id.to_string(),
        }
        .encode();
        let mut dropped = reg.tell(Wake::Later, |_, _| Some(&frame[..]));
        if gone.files {
            let routes = self.files().left(k, &gone.who.name);
            dropped.extend(self.route_locked(reg, &routes));
        }
        self.events.emit(ServerEvent::Left {
            who: gone.who,
            reason,
        });
        dropped
    }

    /// Drops clients whose queues overflowed. Telling the others may overflow
    /// further queues, which are dropped in turn: a work list, not recursion,
    /// since thousands of slow clients can overflow at once.
    fn drop_overflowed(&self, reg: &mut Registry, mut dropped: Vec<u64>) {
        while let Some(k) = dropped.pop() {
            if let Some(m) = reg.members.get(&k) {
                m.outbox.abort(LeaveReason::StoppedReading);
                dropped.extend(self.remove_one(reg, k, LeaveReason::StoppedReading));
            }
        }
    }

    /// Handles a FILE packet from `from`, a client that sends files: the
    /// offer checked against the size limit and sent to whoever can take
    /// it, chunks passed on within the receiver's window, everything else
    /// to the other side of its transfer. Nothing here waits: a sender
    /// that may send no more waits for its receiver's acknowledgement.
    pub fn file(&self, from: &Party, packet: FilePacket) {
        let Some(me) = client_number(&from.id) else {
            return;
        };
        let peer = packet.peer.as_deref().and_then(client_number);
        let transfer = packet.transfer.as_str();
        let routes = match (packet.what, peer) {
            (FileMsg::Offer(offer), _) => self.file_offer(from, me, transfer, peer, offer),
            (FileMsg::Data { offset, bytes }, Some(to)) => {
                return self.file_chunk(from, me, to, transfer, offset, &bytes)
            }
            (FileMsg::Accept { window }, Some(sender)) => {
                let routes = self.files().accept(me, sender, transfer, window);
                if !routes.is_empty() {
                    let verb = format!("accepted a file from {}", self.name_of(sender));
                    self.file_event(from, verb, None, String::new());
                }
                routes
            }
            (FileMsg::Ack { received }, Some(sender)) => {
                self.files().ack(me, sender, transfer, received)
            }
            (FileMsg::Done { sha256 }, Some(to)) => self.files().done(me, to, transfer, sha256),
            (FileMsg::Saved, Some(sender)) => {
                // Bound first: the files' lock must be let go before the
                // registry's is taken (for the sender's name).
                let saved = self.files().saved(me, sender, transfer);
                self.file_saved(from, sender, saved)
            }
            (FileMsg::Cancel { reason, message }, _) => {
                let (routes, name) = self.files().cancel(me, peer, transfer, reason, message);
                if let Some(name) = name {
                    let verb = format!("{reason:?} the transfer of").to_lowercase();
                    self.file_event(from, verb, Some(name), String::new());
                }
                routes
            }
            // Every other packet names the peer it is about.
            (_, None) => Vec::new(),
        };
        self.route(&routes);
    }

    /// A receiver saved a file: logged, and its sender told.
    fn file_saved(
        &self,
        from: &Party,
        sender: u64,
        saved: Option<(Route, crate::server::transfers::Finished)>,
    ) -> Vec<Route> {
        let Some((route, file)) = saved else {
            return Vec::new();
        };
        let rest = format!(
            " ({}) from {}",
            describe_size(file.size),
            self.name_of(sender)
        );
        self.file_event(from, "saved".into(), Some(file.name), rest);
        vec![route]
    }

    /// Passes a chunk read in place (see [`DataIn`]) on, as [`Hub::file`]
    /// does a decoded one.
    pub fn file_data(&self, from: &Party, chunk: &DataIn) {
        if let (Some(me), Some(to)) = (client_number(&from.id), client_number(&chunk.to)) {
            self.file_chunk(from, me, to, &chunk.transfer, chunk.offset, chunk.bytes);
        }
    }

    /// Checks an offer and sends it to its receivers; a refused one goes
    /// back to its sender as a cancel with the reason.
    fn file_offer(
        &self,
        from: &Party,
        me: u64,
        transfer: &str,
        to: Option<u64>,
        offer: Offer,
    ) -> Vec<Route> {
        let refuse = |why: String| {
            vec![Route {
                to: me,
                packet: FilePacket {
                    transfer: transfer.to_string(),
                    peer: None,
                    what: FileMsg::Cancel {
                        reason: crate::common::file_packet::CancelReason::Failed,
                        message: Some(why),
                    },
                },
            }]
        };
        if self.max_file == 0 {
            return refuse("This server does not pass files on.".into());
        }
        if offer.size > self.max_file {
            return refuse(format!(
                "{} is {}; this server passes on files of at most {}.",
                offer.name,
                describe_size(offer.size),
                describe_size(self.max_file)
            ));
        }
        if offer.name.len() > MAX_OFFER_NAME
            || offer
                .thumbnail
                .as_ref()
                .is_some_and(|t| t.len() > MAX_THUMBNAIL)
        {
            return refuse(
                "The offer's name or picture is larger than the server passes on.".into(),
            );
        }
        let receivers: std::collections::BTreeSet<u64> = {
            let reg = self.lock();
            match (offer.room, to) {
                (true, _) => reg
                    .members
                    .iter()
                    .filter(|(&k, m)| k != me && m.files)
                    .map(|(&k, _)| k)
                    .collect(),
                (false, Some(k)) if k != me => match reg.members.get(&k) {
                    Some(m) if m.files => [k].into(),
                    Some(m) => {
                        return refuse(format!(
                            "{}'s program cannot receive files (it is the original messenger                              or an older HubChat).",
                            m.who.name
                        ))
                    }
                    None => return refuse(format!("client{k} is not connected any more.")),
                },
                _ => return refuse("The offer names nobody to send the file to.".into()),
            }
        };
        if offer.room && receivers.is_empty() {
            return refuse("Nobody else here can receive files.".into());
        }
        let whom = match (offer.room, to) {
            (true, _) => "everyone".to_string(),
            (false, k) => self.name_of(k.unwrap_or_default()),
        };
        let rest = format!(" ({}) to {whom}", describe_size(offer.size));
        let name = offer.name.clone();
        let offered = self.files().offer(me, transfer, &offer, receivers);
        match offered {
            Ok(routes) => {
                self.file_event(from, "offers".into(), Some(name), rest);
                routes
            }
            Err(refused) => refuse(refused.0),
        }
    }

    /// Passes a chunk on if it fits its receiver's window; one that breaks
    /// the rules ends its transfer.
    fn file_chunk(
        &self,
        from: &Party,
        me: u64,
        to: u64,
        transfer: &str,
        offset: u64,
        bytes: &[u8],
    ) {
        let verdict = self.files().chunk(me, to, transfer, offset, bytes.len());
        match verdict {
            Chunk::Pass => {
                let found = {
                    let reg = self.lock();
                    let here = reg.members.get(&me).map(|m| m.here.clone());
                    reg.members.get(&to).map(|m| (m.outbox.clone(), here))
                };
                if let Some((outbox, here)) = found {
                    let frame = encode_data_from(transfer, &from.id, offset, bytes);
                    if outbox.push_from(&frame, here.as_deref()).is_err() {
                        self.drop_overflowed_outbox(to, &outbox);
                    }
                }
            }
            Chunk::Stale => {}
            Chunk::Broken(routes) => {
                let verb = "sent a file against the rules; the transfer was stopped";
                self.file_event(from, verb.into(), None, String::new());
                self.route(&routes);
            }
        }
    }

    /// The name of client `k` for the log, or its id once it has left.
    fn name_of(&self, k: u64) -> String {
        self.lock()
            .members
            .get(&k)
            .map_or_else(|| format!("client{k}"), |m| m.who.name.to_string())
    }

    /// Logs what `who` did with a file: `verb`, the file's name (hidden
    /// with the messages' text when the owner hides it), then `rest`.
    fn file_event(&self, who: &Party, verb: String, file: Option<String>, rest: String) {
        self.events.emit(ServerEvent::File {
            who: who.clone(),
            verb,
            file,
            rest,
        });
    }

    fn files(&self) -> MutexGuard<'_, Transfers> {
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends each route's packet to its client, if it is here and sends
    /// files.
    fn route(&self, routes: &[Route]) {
        if routes.is_empty() {
            return;
        }
        let mut reg = self.lock();
        let dropped = self.route_locked(&reg, routes);
        self.drop_overflowed(&mut reg, dropped);
    }

    fn route_locked(&self, reg: &Registry, routes: &[Route]) -> Vec<u64> {
        routes
            .iter()
            .filter_map(|r| {
                let m = reg.members.get(&r.to).filter(|m| m.files)?;
                let frame = ServerPacket::File(r.packet.clone()).encode();
                m.outbox.push(&frame).is_err().then_some(r.to)
            })
            .collect()
    }

    /// The registry holds plain data that every operation leaves consistent
    /// before it can panic, so a poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
