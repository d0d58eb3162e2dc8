//! The sending half of one client connection: a byte queue and its limits.
//!
//! Whoever sends to a client appends a whole frame to its outbox and returns
//! at once; the client's writer thread takes everything queued in one swap
//! and sends it in one write. Frames are appended as bytes, so a broadcast is
//! encoded once and copied into each outbox, and a burst of small packets
//! goes out in a single system call.
//!
//! A client that stops reading must not slow anyone else, and must not make
//! the server hold unbounded memory. Its queue is "full" above the soft
//! limit; if it stays full for the grace period, or reaches the hard limit,
//! the next push reports [`Overflow`] and the caller drops the client. A
//! writer blocked in `write` for the grace period fails by its socket's write
//! timeout. Nothing is ever discarded silently: a frame is either sent or the
//! client is disconnected.
//!
//! Every byte queued (and the batch a writer is sending) is also counted in
//! the server's [`Budget`], which limits all outboxes together; when it is
//! full, [`Outbox::stuck`] tells which clients hold bytes they do not take.
//!
//! Roster changes (a join, a departure) go to every client at once. Waking
//! every writer for each of them would cost a thread switch and a system call
//! per client per change: 500,000 of each while 1,000 clients join. So these
//! are pushed with [`Outbox::push_later`]: queued at once, in order with
//! everything else, but the writer is woken by one shared flusher thread up
//! to [`LATER`] afterwards, by which time a burst of changes has gathered
//! into one write. Anything pushed with [`Outbox::push`] (a message, say)
//! wakes the writer at once and takes the waiting changes along.

use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::memory;
use crate::server::budget::Budget;
use crate::server::event::LeaveReason;

/// How much a client may have queued, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Above this many queued bytes the queue counts as full.
    pub soft_bytes: usize,
    /// At this many queued bytes the client is dropped at once.
    pub hard_bytes: usize,
    /// How long the queue may stay full (or a write may block) before the
    /// client is dropped.
    pub grace: Duration,
}

/// The client's queue overflowed; drop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

pub struct Outbox {
    state: Mutex<State>,
    ready: Condvar,
    /// A handle on the socket, to wake a blocked writer and reader when the
    /// connection is aborted from another thread.
    stream: Arc<TcpStream>,
    limits: QueueLimits,
    /// Where this outbox's bytes are counted with everyone else's.
    budget: Budget,
}

/// How long a frame pushed with [`Outbox::push_later`] may wait before its
/// writer is woken: short for a person, long enough to gather a join storm.
pub const LATER: Duration = Duration::from_millis(25);

/// How far apart the flusher spaces its rounds, per writer it woke in the
/// last one. Each wake-up costs a thread switch and a system call on the
/// server and a read on the client's side, so a round for N clients costs
/// about N times that; spacing rounds by N x this keeps a join storm's
/// roster traffic to a fixed share of the machine however many are in:
/// 1,000 clients get their list at most every 250 ms during a storm,
/// 10,000 every 2.5 s (never sooner than [`LATER`]; after a second of quiet
/// the next change goes out within [`LATER`] again). Measured: 1,000
/// encrypted joins 64 at once took 1.65-1.87 s at 250 us against 1.94-2.10
/// s at 100 us and 3.0-3.2 s without pacing, in the same runs.
const PACE_PER_WRITER: Duration = Duration::from_micros(250);

/// How long roster traffic must stay quiet before freed memory is handed
/// back to the system.
const QUIET: Duration = Duration::from_secs(1);

/// A queue buffer above this size is freed once its bytes are handed to the
/// writer, rather than kept for the connection's life.
const KEEP_QUEUE: usize = 64 * 1024;
/// The most buffer a client with nothing to send keeps: enough for a few
/// messages, so a chat does not allocate for each one, and little enough
/// that 10,000 quiet clients cost little.
const KEEP_IDLE: usize = 1024;

struct State {
    queued: Vec<u8>,
    /// The bytes of the batch the writer took last, counted in the budget
    /// until it asks for the next one (they are still in memory meanwhile).
    in_flight: usize,
    /// When the writer last took a batch, or bytes arrived for an idle
    /// writer: how long the client has left what it was sent waiting.
    progress: Instant,
    /// `queued` holds bytes whose writer has not been woken yet: the
    /// flusher will, unless an ordinary push does first.
    waking_later: bool,
    full_since: Option<Instant>,
    /// No more frames are accepted; the writer sends what is queued and ends.
    finishing: bool,
    /// Why the connection failed on the sending side, if it did.
    failure: Option<LeaveReason>,
}

/// What the writer should do next.
pub enum Next {
    /// Send these bytes.
    Send,
    /// Everything is sent and the outbox is finished: close the sending side.
    Finish,
}

impl Outbox {
    pub fn new(stream: Arc<TcpStream>, limits: QueueLimits, budget: Budget) -> Self {
        Outbox {
            state: Mutex::new(State {
                queued: Vec::new(),
                in_flight: 0,
                progress: Instant::now(),
                waking_later: false,
                full_since: None,
                finishing: false,
                failure: None,
            }),
            ready: Condvar::new(),
            stream,
            limits,
            budget,
        }
    }

    /// Appends one whole frame and wakes the writer. Frames pushed after
    /// `finish` or `abort` are dropped, since that connection is closing.
    pub fn push(&self, frame: &[u8]) -> Result<(), Overflow> {
        let mut s = self.lock();
        let was_empty = self.append(&mut s, frame)?;
        // A writer only sleeps on an empty queue, or on one whose wake-up
        // was left to the flusher.
        let wake = was_empty || s.waking_later;
        s.waking_later = false;
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Appends one whole frame, as [`Outbox::push`] does, but leaves waking
    /// the writer to the flusher, within [`LATER`]. For frames everyone gets
    /// at once (roster changes), where a burst should go out in one write.
    pub fn push_later(self: &Arc<Self>, frame: &[u8]) -> Result<(), Overflow> {
        let mut s = self.lock();
        if self.append(&mut s, frame)? {
            s.waking_later = true;
            drop(s);
            if !Flusher::schedule(self.clone()) {
                // No flusher thread could be started: wake now instead.
                self.wake();
            }
        }
        Ok(())
    }

    /// Checks the limits and appends; tells whether the queue was empty
    /// (so nobody has woken the writer for it yet).
    fn append(&self, s: &mut State, frame: &[u8]) -> Result<bool, Overflow> {
        if s.finishing {
            return Ok(false);
        }
        let len = s.queued.len() + frame.len();
        if len >= self.limits.hard_bytes {
            return Err(Overflow);
        }
        if len > self.limits.soft_bytes {
            let since = *s.full_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.limits.grace {
                return Err(Overflow);
            }
        }
        let was_empty = s.queued.is_empty();
        if was_empty && s.in_flight == 0 {
            s.progress = Instant::now();
        }
        s.queued.extend_from_slice(frame);
        self.budget.charge(frame.len());
        Ok(was_empty)
    }

    /// Wakes the writer for frames pushed with [`Outbox::push_later`], if
    /// nothing woke it meanwhile.
    fn wake(&self) {
        let mut s = self.lock();
        if s.waking_later {
            s.waking_later = false;
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Accepts no more frames; the writer sends what is queued, then closes
    /// the sending side of the socket.
    pub fn finish(&self) {
        self.lock().finishing = true;
        self.ready.notify_one();
    }

    /// Drops whatever is queued and shuts the socket down at once, waking
    /// both the writer and the reader. For clients that must go now.
    pub fn abort(&self, reason: LeaveReason) {
        {
            let mut s = self.lock();
            s.finishing = true;
            // The writer's batch is given up too: the socket is shut down
            // under it, so it is freed as soon as its write fails.
            self.budget.release(s.queued.len() + s.in_flight);
            s.queued = Vec::new();
            s.in_flight = 0;
            s.failure.get_or_insert(reason);
        }
        self.ready.notify_one();
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// If this client has left bytes waiting for at least `after` (its
    /// writer took nothing meanwhile), how many it holds: a client that
    /// reads takes its queue within moments of each write.
    pub fn stuck(&self, now: Instant, after: Duration) -> Option<usize> {
        let s = self.lock();
        let held = s.queued.len() + s.in_flight;
        (held > 0 && !s.finishing && now.saturating_duration_since(s.progress) >= after)
            .then_some(held)
    }

    /// Why the sending side failed, if it did.
    pub fn failure(&self) -> Option<LeaveReason> {
        self.lock().failure.clone()
    }

    /// Waits for work. On [`Next::Send`], `batch` holds the bytes to send (its
    /// old contents are recycled as the new queue, to reuse the allocation).
    pub fn next(&self, batch: &mut Vec<u8>) -> Next {
        batch.clear();
        let mut s = self.lock();
        // The last batch has been sent (or its write failed).
        self.budget.release(s.in_flight);
        s.in_flight = 0;
        if s.queued.is_empty() {
            // Going idle: an idle client keeps only small buffers, so
            // 10,000 quiet clients do not each pin a burst's worth.
            if batch.capacity() > KEEP_IDLE {
                *batch = Vec::new();
            }
            if s.queued.capacity() > KEEP_IDLE {
                s.queued = Vec::new();
            }
        }
        while s.queued.is_empty() && !s.finishing {
            s = self
                .ready
                .wait(s)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if s.queued.is_empty() {
            return Next::Finish;
        }
        std::mem::swap(&mut s.queued, batch);
        s.in_flight = batch.len();
        s.progress = Instant::now();
        s.full_since = None;
        s.waking_later = false;
        // Do not let one burst pin a large buffer for the connection's life.
        if s.queued.capacity() > KEEP_QUEUE {
            s.queued = Vec::new();
        }
        Next::Send
    }

    /// The outbox is a plain byte queue: still consistent if a thread
    /// panicked while holding it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Outbox {
    /// Whatever is still counted leaves the budget with the outbox.
    fn drop(&mut self) {
        let s = self.lock();
        self.budget.release(s.queued.len() + s.in_flight);
    }
}

/// The one thread that wakes writers for [`Outbox::push_later`]. It sleeps
/// on a condition variable while nothing is due, so an idle server uses no
/// CPU for it; it is shared by every server in the process and lives as long
/// as the process.
struct Flusher {
    due: Mutex<Vec<Arc<Outbox>>>,
    ready: Condvar,
}

impl Flusher {
    /// Hands `outbox` to the flusher; false if no flusher could be started.
    fn schedule(outbox: Arc<Outbox>) -> bool {
        static FLUSHER: OnceLock<Option<Arc<Flusher>>> = OnceLock::new();
        let Some(flusher) = FLUSHER.get_or_init(Flusher::start) else {
            return false;
        };
        let mut due = flusher.lock();
        let was_empty = due.is_empty();
        due.push(outbox);
        drop(due);
        if was_empty {
            flusher.ready.notify_one();
        }
        true
    }

    fn start() -> Option<Arc<Flusher>> {
        let flusher = Arc::new(Flusher {
            due: Mutex::new(Vec::new()),
            ready: Condvar::new(),
        });
        let running = flusher.clone();
        thread::Builder::new()
            .name("outbox flusher".into())
            .stack_size(64 * 1024)
            .spawn(move || running.run())
            .ok()?;
        Some(flusher)
    }

    fn run(&self) {
        let mut batch = Vec::new();
        // Whether memory was handed back since the last burst.
        let mut trimmed = true;
        // How many writers the last round woke.
        let mut woken = 0;
        loop {
            let mut due = self.lock();
            while due.is_empty() {
                if trimmed {
                    // Quiet for a while: the next burst starts afresh.
                    woken = 0;
                    due = self
                        .ready
                        .wait(due)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    continue;
                }
                // A burst (a join storm, say) has just ended: once it has
                // stayed quiet for a moment, hand its freed buffers back to
                // the system, once, then sleep until the next burst.
                let (guard, waited) = self
                    .ready
                    .wait_timeout(due, QUIET)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                due = guard;
                if waited.timed_out() && due.is_empty() {
                    drop(due);
                    memory::release_free();
                    trimmed = true;
                    due = self.lock();
                }
            }
            trimmed = false;
            drop(due);
            // Let the burst that started with this frame gather, the
            // longer the more writers the last round woke.
            thread::sleep(pace_after(woken));
            std::mem::swap(&mut *self.lock(), &mut batch);
            woken = batch.len();
            for outbox in batch.drain(..) {
                outbox.wake();
            }
        }
    }

    /// A list of outboxes: consistent whatever panicked while holding it.
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Outbox>>> {
        self.due
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How long the flusher waits before its next round, after one that woke
/// `woken` writers: see [`PACE_PER_WRITER`].
fn pace_after(woken: usize) -> Duration {
    let woken = u32::try_from(woken).unwrap_or(u32::MAX);
    LATER.max(PACE_PER_WRITER.saturating_mul(woken))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_rounds_are_spaced_by_the_crowd_they_woke() {
        assert_eq!(pace_after(0), LATER);
        assert_eq!(pace_after(100), LATER);
        assert_eq!(pace_after(200), Duration::from_millis(50));
        assert_eq!(pace_after(1_000), Duration::from_millis(250));
        assert_eq!(pace_after(10_000), Duration::from_millis(2_500));
        assert!(pace_after(usize::MAX) >= Duration::from_secs(60));
    }
}
