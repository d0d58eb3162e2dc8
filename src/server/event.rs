//! What the server reports to whoever watches it: the window or the log.
//!
//! The hub emits typed [`ServerEvent`]s into an [`Events`] queue; a consumer
//! takes everything pending in one batch. Consumers can fall behind (a window
//! being dragged, a terminal scrolled back), and the relay must not wait for
//! them, so emitting never blocks, and the queue is bounded in bytes: past
//! [`PENDING_BUDGET_BYTES`] of waiting events (or [`MAX_PENDING_RELAYED`]
//! message events), further messages, errors, refusals and avatars are only
//! counted, and reported as one [`ServerEvent::Skipped`] (messages) and one
//! [`ServerEvent::Collapsed`] (the rest) where they would have been. A
//! client that joins and leaves while the queue is over budget, before its
//! join was taken, is counted too (the pair cancels out), unless it left
//! for trouble (dropped, refused, connection lost): that pair stays, up to
//! [`HARD_BUDGET_BYTES`]. The remaining joins and leaves are always queued:
//! there is at most one of each per connected client, so they cannot grow
//! without bound. Nothing is lost silently: every event is either queued or
//! counted.
//!
//! The queue's bytes are also counted in the server's [`Budget`] with every
//! client's outbox: when that is full, events are counted as if the queue
//! were over its own budget, and the queue's own limits shrink with a small
//! budget (to an eighth and a quarter of it), so a slow log alone can never
//! fill the budget and hold up the relay.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::common::packet::ErrorCode;
use crate::common::tls::Fingerprint;
use crate::server::budget::Budget;
use crate::server::limited::Limit;

/// How many relayed-message events may wait for a consumer before further
/// ones are counted instead of queued.
pub const MAX_PENDING_RELAYED: usize = 10_000;

/// How many bytes of events (their text, names and pictures included) may
/// wait for a consumer before further ones are counted instead of queued.
/// A flood of errors into a terminal that reads slowly then costs at most
/// this much memory, rather than growing by tens of megabytes a second.
pub const PENDING_BUDGET_BYTES: usize = 2 << 20;

/// Past [`PENDING_BUDGET_BYTES`], joins and leaves still queue, and a client
/// that left for trouble keeps its join and its leave (the reason matters);
/// past this, those pairs are counted too, so the queue stops here.
pub const HARD_BUDGET_BYTES: usize = 4 * PENDING_BUDGET_BYTES;

/// One thing that happened, with when.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: SystemTime,
    pub what: ServerEvent,
}

/// A connected client as events describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub color: Arc<str>,
}

/// Everything the server reports.
#[derive(Debug, Clone)]
pub enum ServerEvent {
    /// The server accepts connections at `addr`.
    Listening {
        addr: SocketAddr,
        /// The server's certificate, which clients pin.
        fingerprint: Fingerprint,
    },
    /// The server has stopped; the port is free.
    Stopped,
    /// A client finished its handshake and is in everyone's list.
    Joined {
        who: Party,
        image_name: String,
        addr: SocketAddr,
        /// Whether it is a HubChat client (rather than the original).
        hubchat: bool,
        /// The fingerprint of the certificate it showed: set when the
        /// connection is encrypted.
        identity: Option<Fingerprint>,
    },
    /// A joined HubChat client sent its avatar picture (a checked 48x48
    /// PNG), and the other HubChat clients have been sent it.
    Pictured { who: Party, png: Vec<u8> },
    /// A joined client is gone, and the others have been told.
    Left { who: Party, reason: LeaveReason },
    /// A connection was closed before it joined.
    Refused {
        addr: SocketAddr,
        /// The name it asked for, if it got that far.
        name: Option<String>,
        reason: LeaveReason,
    },
    /// A message went from one client to another.
    Relayed {
        from: Party,
        to: Party,
        text: String,
    },
    /// A message named a client that is not connected.
    Undeliverable { from: Party, to: String },
    /// A joined client was held to a limit: slowed, or something it sent
    /// refused. `count` is how many times since the last such event for
    /// this client and limit (see [`crate::server::limited`]).
    Limited {
        who: Party,
        limit: Limit,
        count: u64,
    },
    /// A file was offered, accepted, saved or given up: `who`, `verb`,
    /// the file's name (if the event has one; hidden with the messages'
    /// text when the owner hides that), then `rest` ("alice offers
    /// photo.png (2.4 MB) to bob"). Chunks are not reported.
    File {
        who: Party,
        verb: String,
        file: Option<String>,
        rest: String,
    },
    /// Something went wrong that is not one client's doing.
    Error { message: String },
    /// The owner kicked or banned someone, lifted a ban or released a name.
    Owner { what: String },
    /// Whether clients can find the server on the LAN, and on which port.
    Discovery(crate::common::discovery::Status),
    /// `count` message events were not queued because the consumer fell
    /// behind; the messages themselves were relayed.
    Skipped { count: u64 },
    /// Events other than relayed messages that were only counted because
    /// the consumer fell behind; what they were about still happened.
    Collapsed { counts: Collapsed },
}

/// How many events of each kind were counted instead of queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collapsed {
    /// Messages to a client that is not connected.
    pub undeliverable: u64,
    /// Connections closed before they joined.
    pub refused: u64,
    /// Errors that are not one client's doing.
    pub errors: u64,
    /// Avatars sent (they reached the other clients all the same).
    pub pictures: u64,
    /// Clients that joined and left again while the consumer was behind.
    pub joined_and_left: u64,
    /// Times clients were slowed or had something refused.
    pub limited: u64,
}

impl Collapsed {
    /// The number of events counted, of every kind.
    pub fn total(&self) -> u64 {
        self.undeliverable
            + self.refused
            + self.errors
            + self.pictures
            + self.joined_and_left
            + self.limited
    }

    /// Counts one more event of `what`'s kind; false for kinds that are
    /// never collapsed this way.
    fn count(&mut self, what: &ServerEvent) -> bool {
        if let ServerEvent::Limited { count, .. } = what {
            self.limited += count;
            return true;
        }
        let counter = match what {
            ServerEvent::Undeliverable { .. } => &mut self.undeliverable,
            ServerEvent::Refused { .. } => &mut self.refused,
            ServerEvent::Error { .. } => &mut self.errors,
            ServerEvent::Pictured { .. } => &mut self.pictures,
            ServerEvent::Left { .. } => &mut self.joined_and_left,
            _ => return false,
        };
        *counter += 1;
        true
    }
}

impl ServerEvent {
    /// Roughly how many bytes this event holds in the queue: its own size
    /// plus what its strings and picture own. Names are shared with the hub
    /// but counted anyway, so the budget errs on the safe side.
    pub fn cost(&self) -> usize {
        let party = |p: &Party| p.id.len() + p.name.len() + p.color.len();
        let reason = |r: &LeaveReason| match r {
            LeaveReason::ConnectionLost { detail } | LeaveReason::Refused { detail, .. } => {
                detail.len()
            }
            _ => 0,
        };
        std::mem::size_of::<Event>()
            + match self {
                ServerEvent::Listening { .. }
                | ServerEvent::Stopped
                | ServerEvent::Skipped { .. }
                | ServerEvent::Collapsed { .. } => 0,
                ServerEvent::Joined {
                    who, image_name, ..
                } => party(who) + image_name.len(),
                ServerEvent::Pictured { who, png } => party(who) + png.len(),
                ServerEvent::Left { who, reason: r } => party(who) + reason(r),
                ServerEvent::Refused {
                    name, reason: r, ..
                } => name.as_ref().map_or(0, String::len) + reason(r),
                ServerEvent::Relayed { from, to, text } => party(from) + party(to) + text.len(),
                ServerEvent::Undeliverable { from, to } => party(from) + to.len(),
                ServerEvent::Error { message } | ServerEvent::Owner { what: message } => {
                    message.len()
                }
                ServerEvent::File {
                    who,
                    verb,
                    file,
                    rest,
                } => party(who) + verb.len() + file.as_ref().map_or(0, String::len) + rest.len(),
                ServerEvent::Limited { who, limit, .. } => {
                    party(who)
                        + match limit {
                            Limit::PictureRefused { detail } => detail.len(),
                            _ => 0,
                        }
                }
                ServerEvent::Discovery(status) => status.to_string().len(),
            }
    }

    /// Whether the event may be counted instead of queued when the queue is
    /// over budget. Joins, leaves and the server's own start and stop keep
    /// the window's list of clients right, so they are always queued (a
    /// leave whose join is still queued cancels it instead).
    fn collapsible(&self) -> bool {
        !matches!(
            self,
            ServerEvent::Listening { .. }
                | ServerEvent::Stopped
                | ServerEvent::Discovery(_)
                | ServerEvent::Joined { .. }
                | ServerEvent::Left { .. }
        )
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// The client said DISCONNECT.
    SaidGoodbye,
    /// The client closed the connection without saying DISCONNECT.
    ClosedConnection,
    /// The connection failed: reset, unreachable, ...
    ConnectionLost { detail: String },
    /// The client stopped reading and its outgoing queue stayed full.
    StoppedReading,
    /// The client broke the protocol; it was told why where it could be.
    Refused { code: ErrorCode, detail: String },
    /// The server is stopping.
    ServerStopping,
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaveReason::SaidGoodbye => write!(f, "disconnected"),
            LeaveReason::ClosedConnection => {
                write!(f, "closed the connection without saying goodbye")
            }
            LeaveReason::ConnectionLost { detail } => write!(f, "connection lost ({detail})"),
            LeaveReason::StoppedReading => write!(f, "stopped reading; its queue stayed full"),
            LeaveReason::Refused { detail, .. } => write!(f, "{detail}"),
            LeaveReason::ServerStopping => write!(f, "server stopping"),
        }
    }
}

/// The queue between the server's threads and one consumer.
///
/// Cloning gives another handle to the same queue.
#[derive(Clone, Default)]
pub struct Events {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    ready: Condvar,
    waker: Option<Box<dyn Fn() + Send + Sync>>,
}

struct Pending {
    events: Vec<Event>,
    relayed: usize,
    /// The sum of [`ServerEvent::cost`] over `events`.
    bytes: usize,
    /// Where `bytes` are counted with the server's outboxes.
    budget: Budget,
    /// Past this many bytes, collapsible events are counted, not queued.
    soft: usize,
    /// Past this many, every join and leave pair is counted too.
    hard: usize,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            events: Vec::new(),
            relayed: 0,
            bytes: 0,
            budget: Budget::unlimited(),
            soft: PENDING_BUDGET_BYTES,
            hard: HARD_BUDGET_BYTES,
        }
    }
}

impl Pending {
    fn over_budget(&self, cost: usize) -> bool {
        self.bytes + cost > self.soft || self.budget.would_overflow(cost)
    }

    fn push(&mut self, what: ServerEvent) {
        self.bytes += what.cost();
        self.budget.charge(what.cost());
        self.events.push(Event {
            at: SystemTime::now(),
            what,
        });
    }

    /// Counts an event instead of queueing it, in the summary at the end of
    /// the queue (one for messages, one for the rest; new ones only after
    /// an event that is always queued, so summaries stay few).
    fn skip(&mut self, what: &ServerEvent) {
        if let ServerEvent::Relayed { .. } = what {
            for e in self.summaries() {
                if let ServerEvent::Skipped { count } = &mut e.what {
                    *count += 1;
                    return;
                }
            }
            return self.push(ServerEvent::Skipped { count: 1 });
        }
        for e in self.summaries() {
            if let ServerEvent::Collapsed { counts } = &mut e.what {
                counts.count(what);
                return;
            }
        }
        let mut counts = Collapsed::default();
        if counts.count(what) {
            self.push(ServerEvent::Collapsed { counts });
        }
    }

    /// The summaries at the very end of the queue, newest first (at most
    /// one of each kind: they are only ever added when none is there).
    fn summaries(&mut self) -> impl Iterator<Item = &mut Event> {
        self.events.iter_mut().rev().take_while(|e| {
            matches!(
                e.what,
                ServerEvent::Skipped { .. } | ServerEvent::Collapsed { .. }
            )
        })
    }

    /// When over budget, a leave whose join is still queued removes that
    /// join and is counted instead; true if it did. A leave that deserves
    /// the owner's attention (dropped for not reading, refused, connection
    /// lost) keeps its pair until the queue holds [`HARD_BUDGET_BYTES`].
    fn cancel_join(&mut self, what: &ServerEvent) -> bool {
        let ServerEvent::Left { who, reason } = what else {
            return false;
        };
        let ordinary = matches!(
            reason,
            LeaveReason::SaidGoodbye | LeaveReason::ClosedConnection | LeaveReason::ServerStopping
        );
        let cost = what.cost();
        if !ordinary && self.bytes + cost <= self.hard && !self.budget.would_overflow(cost) {
            return false;
        }
        let joined = self
            .events
            .iter()
            .rposition(|e| matches!(&e.what, ServerEvent::Joined { who: w, .. } if w.id == who.id));
        let Some(at) = joined else {
            return false;
        };
        let join = self.events.remove(at);
        self.bytes -= join.what.cost();
        self.budget.release(join.what.cost());
        self.skip(what);
        true
    }

    fn take(&mut self) -> Vec<Event> {
        self.relayed = 0;
        self.budget.release(self.bytes);
        self.bytes = 0;
        std::mem::take(&mut self.events)
    }
}

impl Events {
    /// A queue whose consumer blocks in [`Events::wait`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue that calls `waker` whenever events arrive in an empty queue,
    /// for a consumer (a GUI loop) that sleeps elsewhere and drains with
    /// [`Events::drain`]. One call per batch, not per event.
    pub fn with_waker(waker: impl Fn() + Send + Sync + 'static) -> Self {
        Events {
            shared: Arc::new(Shared {
                waker: Some(Box::new(waker)),
                ..Shared::default()
            }),
        }
    }

    /// Counts the queue's bytes in `budget` from now on (a server starting
    /// with this queue), with the queue's own limits shrunk to fit a small
    /// budget.
    pub(crate) fn count_in(&self, budget: &Budget) {
        let mut p = self.lock();
        p.budget.release(p.bytes);
        budget.charge(p.bytes);
        p.budget = budget.clone();
        let limit = budget.limit().unwrap_or(usize::MAX);
        p.soft = PENDING_BUDGET_BYTES.min(limit / 8);
        p.hard = HARD_BUDGET_BYTES.min(limit / 4);
    }

    /// Queues an event. Never blocks on the consumer.
    pub(crate) fn emit(&self, what: ServerEvent) {
        let mut p = self.lock();
        let was_empty = p.events.is_empty();
        let relayed = matches!(what, ServerEvent::Relayed { .. });
        let over = p.over_budget(what.cost()) || (relayed && p.relayed >= MAX_PENDING_RELAYED);
        if over && what.collapsible() {
            p.skip(&what);
        } else if !(over && p.cancel_join(&what)) {
            p.relayed += usize::from(relayed);
            p.push(what);
        }
        let woke = was_empty && !p.events.is_empty();
        drop(p);
        if woke {
            self.shared.ready.notify_all();
            if let Some(waker) = &self.shared.waker {
                waker();
            }
        }
    }

    /// Takes every pending event, oldest first, without waiting.
    pub fn drain(&self) -> Vec<Event> {
        self.lock().take()
    }

    /// Waits until at least one event is pending (or `timeout` passes), then
    /// takes them all.
    pub fn wait(&self, timeout: Duration) -> Vec<Event> {
        let p = self.lock();
        let (mut p, _) = self
            .shared
            .ready
            .wait_timeout_while(p, timeout, |p| p.events.is_empty())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        p.take()
    }

    /// The queue stays usable even if a thread panicked while holding it: the
    /// data is a plain list that cannot be left half-updated.
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(id: &str) -> Party {
        Party {
            id: id.into(),
            name: id.into(),
            color: "red".into(),
        }
    }

    fn relayed(n: usize) -> ServerEvent {
        ServerEvent::Relayed {
            from: party("a"),
            to: party("b"),
            text: n.to_string(),
        }
    }

    #[test]
    fn a_consumer_that_falls_behind_gets_a_count_of_skipped_messages() {
        let events = Events::new();
        for n in 0..MAX_PENDING_RELAYED + 500 {
            events.emit(relayed(n));
        }
        let got = events.drain();
        assert!(got.len() <= MAX_PENDING_RELAYED + 1);
        let Some(ServerEvent::Skipped { count }) = got.last().map(|e| &e.what) else {
            panic!("a count at the end");
        };
        assert_eq!(got.len() - 1 + *count as usize, MAX_PENDING_RELAYED + 500);
    }

    #[test]
    fn lifecycle_events_are_never_skipped() {
        let events = Events::new();
        for n in 0..MAX_PENDING_RELAYED + 10 {
            events.emit(relayed(n));
        }
        events.emit(ServerEvent::Stopped);
        events.emit(relayed(usize::MAX));
        let got = events.drain();
        let kinds: Vec<&str> = got[got.len() - 3..]
            .iter()
            .map(|e| match e.what {
                ServerEvent::Skipped { .. } => "skipped",
                ServerEvent::Stopped => "stopped",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["skipped", "stopped", "skipped"]);
    }

    fn undeliverable(n: usize) -> ServerEvent {
        ServerEvent::Undeliverable {
            from: party("a"),
            to: format!("client{n}"),
        }
    }

    fn queued_bytes(events: &[Event]) -> usize {
        events.iter().map(|e| e.what.cost()).sum()
    }

    #[test]
    fn a_flood_of_errors_is_counted_past_the_byte_budget() {
        let events = Events::new();
        let n = 200_000;
        for k in 0..n {
            events.emit(undeliverable(k));
        }
        let got = events.drain();
        assert!(queued_bytes(&got) <= PENDING_BUDGET_BYTES + 1_000);
        let Some(ServerEvent::Collapsed { counts }) = got.last().map(|e| &e.what) else {
            panic!("a count at the end");
        };
        assert_eq!(
            got.len() - 1 + counts.undeliverable as usize,
            n,
            "none lost"
        );
        assert_eq!(counts.total(), counts.undeliverable);
    }

    #[test]
    fn a_message_too_big_for_an_empty_queue_is_counted_and_wakes_the_consumer() {
        let events = Events::new();
        events.emit(ServerEvent::Relayed {
            from: party("a"),
            to: party("b"),
            text: "x".repeat(PENDING_BUDGET_BYTES),
        });
        let got = events.wait(Duration::from_secs(5));
        assert!(matches!(
            got[..],
            [Event {
                what: ServerEvent::Skipped { count: 1 },
                ..
            }]
        ));
    }

    fn joined(id: &str) -> ServerEvent {
        ServerEvent::Joined {
            who: party(id),
            image_name: "image_1.png".into(),
            addr: "127.0.0.1:4000".parse().unwrap(),
            hubchat: false,
            identity: None,
        }
    }

    fn left(id: &str) -> ServerEvent {
        ServerEvent::Left {
            who: party(id),
            reason: LeaveReason::SaidGoodbye,
        }
    }

    #[test]
    fn joins_and_leaves_past_the_budget_cancel_out_and_are_counted() {
        let events = Events::new();
        for k in 0..100_000 {
            events.emit(undeliverable(k));
        }
        events.emit(joined("stays"));
        for k in 0..50_000 {
            events.emit(joined(&format!("client{k}")));
            events.emit(left(&format!("client{k}")));
        }
        events.emit(left("gone-before"));
        let got = events.drain();
        assert!(queued_bytes(&got) <= PENDING_BUDGET_BYTES + 1_000);
        let kept: Vec<&str> = got
            .iter()
            .filter_map(|e| match &e.what {
                ServerEvent::Joined { who, .. } | ServerEvent::Left { who, .. } => Some(&*who.id),
                _ => None,
            })
            .collect();
        assert_eq!(kept, ["stays", "gone-before"]);
        let cancelled: u64 = got
            .iter()
            .map(|e| match &e.what {
                ServerEvent::Collapsed { counts } => counts.joined_and_left,
                _ => 0,
            })
            .sum();
        assert_eq!(cancelled, 50_000);
    }

    #[test]
    fn a_client_dropped_for_trouble_keeps_its_join_and_leave_up_to_the_hard_budget() {
        let events = Events::new();
        for k in 0..100_000 {
            events.emit(undeliverable(k));
        }
        let dropped = |id: &str| ServerEvent::Left {
            who: party(id),
            reason: LeaveReason::StoppedReading,
        };
        events.emit(joined("stalled"));
        events.emit(dropped("stalled"));
        for k in 0..100_000 {
            events.emit(joined(&format!("client{k}")));
            events.emit(dropped(&format!("client{k}")));
        }
        let got = events.drain();
        assert!(queued_bytes(&got) <= HARD_BUDGET_BYTES + 1_000);
        assert!(got.iter().any(|e| matches!(&e.what,
            ServerEvent::Left { who, reason: LeaveReason::StoppedReading } if &*who.id == "stalled")));
        let cancelled: u64 = got
            .iter()
            .map(|e| match &e.what {
                ServerEvent::Collapsed { counts } => counts.joined_and_left,
                _ => 0,
            })
            .sum();
        let kept = got
            .iter()
            .filter(|e| matches!(e.what, ServerEvent::Left { .. }))
            .count();
        assert!(cancelled > 0);
        assert_eq!(
            kept as u64 + cancelled,
            100_001,
            "every leave kept or counted"
        );
    }

    #[test]
    fn the_waker_runs_once_per_batch() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let events = Events::with_waker(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        for n in 0..100 {
            events.emit(relayed(n));
        }
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        assert_eq!(events.drain().len(), 100);
        events.emit(ServerEvent::Stopped);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }
}
