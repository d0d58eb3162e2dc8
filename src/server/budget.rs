//! One memory budget for everything the server holds on its way out: the
//! bytes queued in every client's outbox (and the batch its writer is
//! sending) plus the events waiting for the window or the log.
//!
//! Each outbox has its own limits (see [`crate::server::outbox`]), but a
//! thousand clients that each stay just under them would still add up to
//! gigabytes. So every byte queued anywhere is also counted here, in one
//! atomic counter, and when the sum reaches the limit the server refuses new
//! work until it is below again:
//!
//! - readers stop relaying: a sender's next message or picture waits, unread
//!   further, like a sender over its rate (nothing is lost, it is slowed);
//! - newcomers are refused with a sentence saying the server is busy;
//! - the event queue counts events instead of queueing them;
//! - clients whose writer has taken nothing from their queue for a fifth of
//!   the slow-reader grace ([`SHED_FRACTION`]; 2 s by default) are dropped
//!   as having stopped reading, largest queue first, until the sum is below
//!   the limit, so the memory held by clients that do not read is given
//!   back and the pause ends.
//!
//! A client that reads keeps its queue near empty, so it is never dropped
//! and loses nothing: its messages only wait while the server recovers. The
//! sum may pass the limit by what was already on its way when it was
//! reached: at most one message or picture per sending connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The default budget: 64 MiB of queued bytes in all, well under the 256 MB
/// a server under attack may use in all (issue 10's goal).
pub const DEFAULT_MAX_QUEUED: usize = 64 << 20;

/// With the budget full, a client whose queue has waited a fifth of the
/// slow-reader grace without its writer taking anything is dropped: it is
/// not reading, and the memory it holds keeps everyone else waiting. Shorter
/// than the ordinary grace, because here everyone waits on it.
pub const SHED_FRACTION: u32 = 5;

/// How often, at most, the clients are looked through for ones to drop:
/// every paused sender asks, but one look per interval is enough.
pub const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// The shared counter of queued bytes and its limit. Cloning gives another
/// handle to the same counter.
#[derive(Debug, Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    queued: AtomicUsize,
    /// `usize::MAX` for no budget.
    limit: usize,
    /// Milliseconds after `born` of the last sweep, so only one paused
    /// sender per [`SWEEP_EVERY`] looks through the clients.
    last_sweep: AtomicU64,
    born: Instant,
    /// Waiting senders sleep on `freed`, woken when the queued bytes drop
    /// below the limit; the mutex only orders that wake-up with their check.
    room: Mutex<()>,
    freed: Condvar,
}

impl Budget {
    /// A budget of `limit` bytes; `None` counts without a limit.
    pub fn new(limit: Option<usize>) -> Self {
        Budget {
            inner: Arc::new(Inner {
                queued: AtomicUsize::new(0),
                limit: limit.unwrap_or(usize::MAX),
                last_sweep: AtomicU64::new(0),
                born: Instant::now(),
                room: Mutex::new(()),
                freed: Condvar::new(),
            }),
        }
    }

    /// A counter with no limit, for an event queue no server counts yet.
    pub fn unlimited() -> Self {
        Budget::new(None)
    }

    /// Counts `bytes` more queued.
    pub fn charge(&self, bytes: usize) {
        self.inner.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` fewer queued (sent, or dropped with their client),
    /// waking the senders waiting for room if this made some.
    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let before = self.inner.queued.fetch_sub(bytes, Ordering::Relaxed);
        let limit = self.inner.limit;
        if before >= limit && before - bytes < limit {
            let _ordered = self.lock_room();
            self.inner.freed.notify_all();
        }
    }

    /// Waits up to `slice` for the queued bytes to drop below the limit;
    /// says whether they have.
    pub fn wait_for_room(&self, slice: Duration) -> bool {
        let room = self.lock_room();
        if !self.is_full() {
            return true;
        }
        let _ = self
            .inner
            .freed
            .wait_timeout_while(room, slice, |_| self.is_full());
        !self.is_full()
    }

    /// The mutex guards no data, so a poisoned one is as good as any.
    fn lock_room(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .room
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many bytes are queued now, in all.
    pub fn queued(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// The limit in bytes, `None` if there is none.
    pub fn limit(&self) -> Option<usize> {
        (self.inner.limit != usize::MAX).then_some(self.inner.limit)
    }

    /// Whether the queued bytes have reached the limit: new work waits.
    pub fn is_full(&self) -> bool {
        self.queued() >= self.inner.limit
    }

    /// Whether `more` bytes would take the queued bytes past the limit.
    pub fn would_overflow(&self, more: usize) -> bool {
        self.queued().saturating_add(more) > self.inner.limit
    }

    /// True for at most one caller per [`SWEEP_EVERY`]: the one that should
    /// look for clients to drop.
    pub fn sweep_due(&self) -> bool {
        let now = self.inner.born.elapsed().as_millis() as u64;
        let last = self.inner.last_sweep.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < SWEEP_EVERY.as_millis() as u64 {
            return false;
        }
        self.inner
            .last_sweep
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// `64 MiB`, for sentences that name the limit.
    pub fn describe_limit(&self) -> String {
        match self.limit() {
            Some(bytes) if bytes >= 1 << 20 => format!("{} MiB", bytes >> 20),
            Some(bytes) => format!("{} KiB", bytes >> 10),
            None => "no limit".into(),
        }
    }
}

impl Default for Budget {
    /// No limit.
    fn default() -> Self {
        Budget::unlimited()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_full_at_its_limit_and_free_again_below() {
        let budget = Budget::new(Some(100));
        budget.charge(60);
        assert!(!budget.is_full());
        assert!(budget.would_overflow(41));
        assert!(!budget.would_overflow(40));
        budget.charge(40);
        assert!(budget.is_full());
        budget.release(1);
        assert!(!budget.is_full());
        assert_eq!(budget.queued(), 99);
    }

    #[test]
    fn no_limit_is_never_full() {
        let budget = Budget::unlimited();
        budget.charge(usize::MAX / 2);
        assert!(!budget.is_full());
        assert_eq!(budget.limit(), None);
    }

    #[test]
    fn one_sweep_per_interval() {
        let budget = Budget::new(Some(1));
        assert!(budget.sweep_due());
        assert!(!budget.sweep_due());
    }
}
