//! The limits a joined client was held to (slowed, or something it sent
//! refused), as events for the window and the log, and the per-client
//! throttle that keeps a flood of them to a line now and then.
//!
//! A flooder is slowed on every message past its burst, thousands of times
//! a second if it could; one line each would bury the log. So each client's
//! connection keeps a [`LimitLog`]: the first time a limit applies it makes
//! an event, then at most one per [`LINE_EVERY`] for that client and limit,
//! carrying how many times it applied since the last one, and whatever is
//! still uncounted when the client leaves. The event queue and the headless
//! log throttle these events further, like every other kind.

use std::time::{Duration, Instant};

use crate::server::event::{Party, ServerEvent};

/// At most one line per client and limit this often.
pub const LINE_EVERY: Duration = Duration::from_secs(5);

/// A limit the server held a joined client to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// Its messages were read more slowly: it sent more than this many a
    /// second (past its burst).
    MessageRate { per_second: u64 },
    /// Its messages were read more slowly: it sent more than this many KiB
    /// of text a second (past its burst).
    ByteRate { kib_per_second: u64 },
    /// Its messages waited because the server's queue budget was full.
    Busy,
    /// A message longer than the server passes on was not delivered.
    TooLong { bytes: usize, max: usize },
    /// A second avatar in one session was ignored.
    PictureRepeated,
    /// An avatar that is not a picture HubChat accepts was ignored.
    PictureRefused { detail: String },
}

impl Limit {
    /// One slot per kind in a [`LimitLog`].
    fn slot(&self) -> usize {
        match self {
            Limit::MessageRate { .. } => 0,
            Limit::ByteRate { .. } => 1,
            Limit::Busy => 2,
            Limit::TooLong { .. } => 3,
            Limit::PictureRepeated => 4,
            Limit::PictureRefused { .. } => 5,
        }
    }

    /// What happened, after the client's name: `was slowed: over 20
    /// messages a second`.
    pub fn describe(&self) -> String {
        match self {
            Limit::MessageRate { per_second } => {
                format!("was slowed: over {per_second} messages a second")
            }
            Limit::ByteRate { kib_per_second } => {
                format!("was slowed: over {kib_per_second} KiB of text a second")
            }
            Limit::Busy => "was slowed: the server's queues are full".into(),
            Limit::TooLong { bytes, max } => format!(
                "had a message refused: {bytes} bytes, over the {} KiB limit",
                max / 1024
            ),
            Limit::PictureRepeated => "had an avatar refused: one is accepted per session".into(),
            Limit::PictureRefused { detail } => format!("had an avatar refused: {detail}"),
        }
    }
}

const SLOTS: usize = 6;

/// One client's limit events, at most one per limit per [`LINE_EVERY`].
#[derive(Debug)]
pub struct LimitLog {
    who: Party,
    slots: [Slot; SLOTS],
}

#[derive(Debug, Default)]
struct Slot {
    /// When a line was last made for this limit.
    logged: Option<Instant>,
    /// Times it applied since then, and the latest details.
    unlogged: u64,
    latest: Option<Limit>,
}

impl LimitLog {
    pub fn new(who: Party) -> Self {
        LimitLog {
            who,
            slots: Default::default(),
        }
    }

    /// Counts one more time `limit` applied at `now`; the event to emit, if
    /// one is due.
    pub fn note(&mut self, limit: Limit, now: Instant) -> Option<ServerEvent> {
        let slot = &mut self.slots[limit.slot()];
        slot.unlogged += 1;
        let due = slot
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LINE_EVERY);
        if !due {
            slot.latest = Some(limit);
            return None;
        }
        slot.logged = Some(now);
        let count = std::mem::take(&mut slot.unlogged);
        slot.latest = None;
        Some(ServerEvent::Limited {
            who: self.who.clone(),
            limit,
            count,
        })
    }

    /// Events for whatever was counted and not yet logged (the client is
    /// leaving).
    pub fn finish(&mut self) -> Vec<ServerEvent> {
        self.slots
            .iter_mut()
            .filter_map(|slot| {
                let limit = slot.latest.take()?;
                let count = std::mem::take(&mut slot.unlogged);
                Some(ServerEvent::Limited {
                    who: self.who.clone(),
                    limit,
                    count,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Party {
        Party {
            id: "client3".into(),
            name: "alice".into(),
            color: "red".into(),
        }
    }

    fn count(event: Option<ServerEvent>) -> Option<u64> {
        match event {
            Some(ServerEvent::Limited { count, .. }) => Some(count),
            _ => None,
        }
    }

    #[test]
    fn a_flood_of_one_limit_makes_one_line_per_interval_with_a_count() {
        let t0 = Instant::now();
        let mut log = LimitLog::new(alice());
        let slowed = || Limit::MessageRate { per_second: 20 };
        assert_eq!(count(log.note(slowed(), t0)), Some(1), "the first at once");
        for _ in 0..999 {
            assert_eq!(count(log.note(slowed(), t0 + Duration::from_secs(1))), None);
        }
        assert_eq!(
            count(log.note(Limit::PictureRepeated, t0 + Duration::from_secs(1))),
            Some(1),
            "another limit has its own interval"
        );
        assert_eq!(
            count(log.note(slowed(), t0 + LINE_EVERY)),
            Some(1000),
            "then one line counting everything since the last"
        );
        log.note(slowed(), t0 + LINE_EVERY);
        log.note(slowed(), t0 + LINE_EVERY);
        let left = log.finish();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(
            count(left.into_iter().next()),
            Some(2),
            "the rest on leaving"
        );
        assert!(log.finish().is_empty());
    }

    #[test]
    fn limits_read_as_sentences() {
        assert_eq!(
            Limit::TooLong {
                bytes: 70_000,
                max: 65_536
            }
            .describe(),
            "had a message refused: 70000 bytes, over the 64 KiB limit"
        );
        assert_eq!(
            Limit::ByteRate {
                kib_per_second: 128
            }
            .describe(),
            "was slowed: over 128 KiB of text a second"
        );
    }
}
