//! What the server reports to whoever watches it: the window or the log.
//!
//! The hub emits typed [`ServerEvent`]s into an [`Events`] queue; a consumer
//! takes everything pending in one batch. Consumers can fall behind (a window
//! being dragged, a terminal scrolled back), and the relay must not wait for
//! them, so emitting never blocks: past [`MAX_PENDING_RELAYED`] undelivered
//! message events, further ones are only counted and reported as one
//! [`ServerEvent::Skipped`]. Joins, leaves and errors are never skipped.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::common::packet::ErrorCode;

/// How many relayed-message events may wait for a consumer before further
/// ones are counted instead of queued.
pub const MAX_PENDING_RELAYED: usize = 10_000;

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
    Listening { addr: SocketAddr },
    /// The server has stopped; the port is free.
    Stopped,
    /// A client finished its handshake and is in everyone's list.
    Joined {
        who: Party,
        image_name: String,
        addr: SocketAddr,
        /// Whether it is a HubChat client (rather than the original).
        hubchat: bool,
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
    /// Something went wrong that is not one client's doing.
    Error { message: String },
    /// `count` message events were not queued because the consumer fell
    /// behind; the messages themselves were relayed.
    Skipped { count: u64 },
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

#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    relayed: usize,
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

    /// Queues an event. Never blocks on the consumer.
    pub(crate) fn emit(&self, what: ServerEvent) {
        let mut p = self.lock();
        let was_empty = p.events.is_empty();
        if let ServerEvent::Relayed { .. } = what {
            if p.relayed >= MAX_PENDING_RELAYED {
                match p.events.last_mut() {
                    Some(Event {
                        what: ServerEvent::Skipped { count },
                        ..
                    }) => *count += 1,
                    _ => p.events.push(Event {
                        at: SystemTime::now(),
                        what: ServerEvent::Skipped { count: 1 },
                    }),
                }
                return;
            }
            p.relayed += 1;
        }
        p.events.push(Event {
            at: SystemTime::now(),
            what,
        });
        drop(p);
        if was_empty {
            self.shared.ready.notify_all();
            if let Some(waker) = &self.shared.waker {
                waker();
            }
        }
    }

    /// Takes every pending event, oldest first, without waiting.
    pub fn drain(&self) -> Vec<Event> {
        let mut p = self.lock();
        p.relayed = 0;
        std::mem::take(&mut p.events)
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
        p.relayed = 0;
        std::mem::take(&mut p.events)
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
        assert_eq!(got.len(), MAX_PENDING_RELAYED + 1);
        assert!(matches!(
            got.last().unwrap().what,
            ServerEvent::Skipped { count: 500 }
        ));
    }

    #[test]
    fn lifecycle_events_are_never_skipped() {
        let events = Events::new();
        for n in 0..MAX_PENDING_RELAYED + 10 {
            events.emit(relayed(n));
        }
        events.emit(ServerEvent::Stopped);
        events.emit(relayed(0));
        let got = events.drain();
        let kinds: Vec<&str> = got[MAX_PENDING_RELAYED..]
            .iter()
            .map(|e| match e.what {
                ServerEvent::Skipped { .. } => "skipped",
                ServerEvent::Stopped => "stopped",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["skipped", "stopped", "skipped"]);
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
