//! The sending half of one client connection: a byte queue, its limits, and
//! who writes it to the socket.
//!
//! Most of the time a client reads what it is sent at once, and its socket
//! has room. Then whoever sends to it (another client's reader thread
//! relaying a message) writes the frame straight into its socket, without
//! blocking ([`Link::try_send`]): one system call, no thread woken on the
//! server. Only what the socket does not take is queued, and only then is a
//! writer thread started for the client (or woken, if one is still about):
//! it sends the queue with blocking writes, and ends once the client has
//! been idle for [`WRITER_LINGER`]. So a server with thousands of quiet
//! clients has one thread each, not two, and a message costs one wake-up on
//! the server, not two.
//!
//! One party at a time may write to the socket (the [`Turn`]): a sender
//! writing straight through, the writer thread, or the connection closing.
//! Frames pushed while someone has the turn are queued, and whoever has it
//! sends them before giving it up, so frames leave in the order they were
//! pushed. Where the system cannot write a socket without blocking while
//! another thread reads it (see [`SENDS_WITHOUT_BLOCKING`]), every frame is
//! queued for the writer thread.
//!
//! Frames are appended as bytes, so a broadcast is encoded once and copied
//! into each queue, and a burst of small packets goes out in a single
//! system call.
//!
//! A client that stops reading must not slow anyone else, and must not make
//! the server hold unbounded memory. Its queue is "full" above the soft
//! limit; if it stays full for the grace period, or reaches the hard limit,
//! the next push reports [`Overflow`] and the caller drops the client. A
//! writer blocked in `write` for the grace period fails by its socket's write
//! timeout. Nothing is ever discarded silently: a frame is either sent or the
//! client is disconnected.
//!
//! Every byte queued (and what a writer is sending) is also counted in the
//! server's [`Budget`], which limits all outboxes together; when it is full,
//! [`Outbox::stuck`] tells which clients hold bytes they do not take.
//!
//! Roster changes (a join, a departure) go to every client at once. Writing
//! each to every socket as it happens would cost a system call per client
//! per change: 500,000 of them while 1,000 clients join. So these are pushed
//! with [`Outbox::push_later`] and [`Outbox::push_roster`]: queued at once,
//! in order with everything else, and written by one shared flusher thread
//! up to [`LATER`] afterwards, by which time a burst of changes has gathered
//! into one write. Joins gathered that way go out as one ALL CLIENTS frame
//! listing every newcomer, which original clients read like any roster.
//! Anything pushed with [`Outbox::push`] (a message, say) goes out at once
//! and takes the waiting changes along.

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::memory;
use crate::common::packet::merge_all_clients;
use crate::common::transport::{Link, Sent, SENDS_WITHOUT_BLOCKING};
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

/// Stack for a writer thread: it only copies bytes into a socket (and
/// seals them, when encrypted).
pub const WRITER_STACK: usize = 64 * 1024;

/// How long a writer thread waits for more to send before it ends. A
/// client that backs up once tends to back up again during the same burst,
/// and starting a thread costs more than keeping one for a moment.
pub const WRITER_LINGER: Duration = Duration::from_secs(2);

/// How many times a sender writing straight through sends what others
/// queued meanwhile before it leaves the rest to the writer thread: it has
/// its own client to read from.
const DIRECT_ROUNDS: usize = 4;

pub struct Outbox {
    state: Mutex<State>,
    /// Wakes a waiting writer thread when it is handed the turn, or when
    /// the outbox is finishing.
    for_writer: Condvar,
    /// Wakes [`Outbox::close`] once the socket has been finished.
    for_close: Condvar,
    link: Link,
    limits: QueueLimits,
    /// Where this outbox's bytes are counted with everyone else's.
    budget: Budget,
}

/// What a roster waiting in an outbox costs it: the pointer to the one copy
/// every outbox shares. 10,000 clients joining tell each of 10,000 others
/// of them: counting each roster's bytes in every outbox would count
/// gigabytes that are not there, and turn newcomers away as if the server
/// were full. Once written into a queue they count as the bytes they are.
const ROSTER_ENTRY_COST: usize = std::mem::size_of::<Arc<[u8]>>();

/// How long a frame pushed with [`Outbox::push_later`] may wait before it
/// is written: short for a person, long enough to gather a join storm.
pub const LATER: Duration = Duration::from_millis(25);

/// How far apart the flusher spaces its rounds, per outbox it wrote in the
/// last one. Each write costs a system call on the server and a read on the
/// client's side, so a round for N clients costs about N times that;
/// spacing rounds by N x this keeps a join storm's roster traffic to a
/// fixed share of the machine however many are in: 1,000 clients get their
/// list at most every 250 ms during a storm, 10,000 every 2.5 s (never
/// sooner than [`LATER`]; after a second of quiet the next change goes out
/// within [`LATER`] again). Measured: 1,000 encrypted joins 64 at once took
/// 1.65-1.87 s at 250 us against 1.94-2.10 s at 100 us and 3.0-3.2 s
/// without pacing, in the same runs.
const PACE_PER_WRITER: Duration = Duration::from_micros(250);

/// How long roster traffic must stay quiet before freed memory is handed
/// back to the system.
const QUIET: Duration = Duration::from_secs(1);

/// A queue buffer above this size is freed once its bytes are taken, rather
/// than kept for the connection's life.
const KEEP_QUEUE: usize = 64 * 1024;
/// The most buffer an idle writer keeps between bursts.
const KEEP_IDLE: usize = 1024;

/// Who may write to the socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Nobody: the next push may write straight through.
    Free,
    /// A sender (or the flusher) writing without blocking.
    Pusher,
    /// The writer thread, with blocking writes.
    Writer,
}

struct State {
    queued: Vec<u8>,
    /// One-entry rosters pushed with [`Outbox::push_roster`] after
    /// everything in `queued`, not yet written into it: they go out as one
    /// ALL CLIENTS frame.
    rosters: Vec<Arc<[u8]>>,
    /// What they cost, as counted in the budget and the limits: a pointer
    /// each ([`ROSTER_ENTRY_COST`]), since every client shares one copy of
    /// each roster until it is written.
    roster_bytes: usize,
    /// Bytes taken from the queue for a write that has not returned, or
    /// left in the link by a write that did not finish, counted in the
    /// budget until they are sent.
    in_flight: usize,
    /// When bytes last left for the socket, or arrived for an idle outbox:
    /// how long the client has left what it was sent waiting.
    progress: Instant,
    /// `queued` holds bytes nobody has been asked to write yet: the flusher
    /// will, unless an ordinary push does first.
    waking_later: bool,
    full_since: Option<Instant>,
    turn: Turn,
    /// A writer thread exists (working, or waiting to be handed the turn).
    writer_alive: bool,
    /// The writer thread, to wait for when the connection closes.
    writer: Option<JoinHandle<()>>,
    /// No more frames are accepted; what is queued is sent, then the
    /// sending side of the socket is closed.
    finishing: bool,
    /// The sending side is closed (or the connection aborted): nothing more
    /// will be written.
    closed: bool,
    /// Why the connection failed on the sending side, if it did.
    failure: Option<LeaveReason>,
}

impl Outbox {
    pub fn new(link: Link, limits: QueueLimits, budget: Budget) -> Self {
        Outbox {
            state: Mutex::new(State {
                queued: Vec::new(),
                rosters: Vec::new(),
                roster_bytes: 0,
                in_flight: 0,
                progress: Instant::now(),
                waking_later: false,
                full_since: None,
                turn: Turn::Free,
                writer_alive: false,
                writer: None,
                finishing: false,
                closed: false,
                failure: None,
            }),
            for_writer: Condvar::new(),
            for_close: Condvar::new(),
            link,
            limits,
            budget,
        }
    }

    /// Sends one whole frame: straight into the socket when nobody else is
    /// writing to it, after whatever is queued; else queued for whoever is.
    /// Frames pushed after `finish` or `abort` are dropped, since that
    /// connection is closing.
    pub fn push(self: &Arc<Self>, frame: &[u8]) -> Result<(), Overflow> {
        self.push_from(frame, None)
    }

    /// Sends one whole frame as [`Outbox::push`] does, unless `sender` says
    /// its sender has left. The hub says a client has left (clears its
    /// flag) before it tells anyone, so a frame from it is either sent
    /// before that news or not at all: never from someone already gone.
    pub fn push_from(
        self: &Arc<Self>,
        frame: &[u8],
        sender: Option<&AtomicBool>,
    ) -> Result<(), Overflow> {
        let mut s = self.lock();
        if sender.is_some_and(|here| !here.load(Ordering::Acquire)) {
            return Ok(());
        }
        self.check(&mut s, frame.len())?;
        if s.finishing {
            return Ok(());
        }
        if s.turn != Turn::Free {
            // Whoever writes sends it before giving up the turn.
            self.append(&mut s, frame);
            return Ok(());
        }
        s.waking_later = false;
        if !SENDS_WITHOUT_BLOCKING {
            self.append(&mut s, frame);
            self.hand_to_writer(s);
            return Ok(());
        }
        s.turn = Turn::Pusher;
        if s.queued.is_empty() && s.rosters.is_empty() {
            self.write_through(s, Some(frame));
        } else {
            self.append(&mut s, frame);
            self.write_through(s, None);
        }
        Ok(())
    }

    /// Queues one whole frame from `sender` (see [`Outbox::push_from`])
    /// without writing it yet: `deferred` notes this outbox, and whoever
    /// holds it writes everything noted with [`Deferred::send_all`] before
    /// it next waits. A reader relaying a burst of messages that arrived in
    /// one read so makes one write per receiver, not one per message.
    pub fn push_deferred(
        self: &Arc<Self>,
        frame: &[u8],
        sender: Option<&AtomicBool>,
        deferred: &mut Deferred,
    ) -> Result<(), Overflow> {
        let mut s = self.lock();
        if sender.is_some_and(|here| !here.load(Ordering::Acquire)) {
            return Ok(());
        }
        self.check(&mut s, frame.len())?;
        if s.finishing {
            return Ok(());
        }
        self.append(&mut s, frame);
        // Whoever has the turn sends it along; else it is ours to send.
        if s.turn == Turn::Free {
            drop(s);
            deferred.note(self);
        }
        Ok(())
    }

    /// Writes what was queued with [`Outbox::push_deferred`], unless
    /// someone has the turn (they send it) or it was sent meanwhile.
    fn send_queued(self: &Arc<Self>) {
        let s = self.lock();
        if s.turn != Turn::Free || s.finishing || (s.queued.is_empty() && s.rosters.is_empty()) {
            return;
        }
        self.send_all_now(s);
    }

    /// With the turn free and something queued: writes it now, straight
    /// through where the system allows, else by the writer thread.
    fn send_all_now<'a>(self: &'a Arc<Self>, mut s: MutexGuard<'a, State>) {
        s.waking_later = false;
        if SENDS_WITHOUT_BLOCKING {
            s.turn = Turn::Pusher;
            self.write_through(s, None);
        } else {
            self.hand_to_writer(s);
        }
    }

    /// Queues one whole frame, as [`Outbox::push`] does, but leaves writing
    /// it to the flusher, within [`LATER`]. For frames everyone gets at once
    /// (roster changes), where a burst should go out in one write.
    pub fn push_later(self: &Arc<Self>, frame: &[u8]) -> Result<(), Overflow> {
        let mut s = self.lock();
        self.check(&mut s, frame.len())?;
        if s.finishing {
            return Ok(());
        }
        self.append(&mut s, frame);
        self.schedule(s);
        Ok(())
    }

    /// Queues a one-entry ALL CLIENTS frame (a newcomer) as
    /// [`Outbox::push_later`] does. Rosters pushed one after another, with
    /// nothing between them, go out as one ALL CLIENTS frame listing all
    /// their entries. `roster` must be what
    /// [`crate::common::packet::encode_all_clients`] makes.
    pub fn push_roster(self: &Arc<Self>, roster: &Arc<[u8]>) -> Result<(), Overflow> {
        let mut s = self.lock();
        self.check(&mut s, ROSTER_ENTRY_COST)?;
        if s.finishing {
            return Ok(());
        }
        s.rosters.push(roster.clone());
        s.roster_bytes += ROSTER_ENTRY_COST;
        self.budget.charge(ROSTER_ENTRY_COST);
        self.schedule(s);
        Ok(())
    }

    /// Asks the flusher to write what was just queued, unless someone is
    /// writing (they take it along) or it was asked already.
    fn schedule<'a>(self: &'a Arc<Self>, mut s: MutexGuard<'a, State>) {
        if s.turn != Turn::Free || s.waking_later {
            return;
        }
        s.waking_later = true;
        drop(s);
        if !Flusher::schedule(self.clone()) {
            // No flusher thread could be started: write now instead.
            self.flush_later();
        }
    }

    /// Checks the limits for `more` bytes about to be queued.
    fn check(&self, s: &mut State, more: usize) -> Result<(), Overflow> {
        if s.finishing {
            return Ok(());
        }
        let len = s.queued.len() + s.roster_bytes + more;
        if len >= self.limits.hard_bytes {
            return Err(Overflow);
        }
        if len > self.limits.soft_bytes {
            let since = *s.full_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.limits.grace {
                return Err(Overflow);
            }
        }
        Ok(())
    }

    /// Appends a frame after everything queued (the rosters waiting too).
    fn append(&self, s: &mut State, frame: &[u8]) {
        self.settle_rosters(s);
        if s.queued.is_empty() && s.in_flight == 0 {
            s.progress = Instant::now();
        }
        s.queued.extend_from_slice(frame);
        self.budget.charge(frame.len());
    }

    /// Writes the rosters waiting into the queue, as one frame.
    fn settle_rosters(&self, s: &mut State) {
        if s.rosters.is_empty() {
            return;
        }
        if s.queued.is_empty() && s.in_flight == 0 {
            s.progress = Instant::now();
        }
        let before = s.queued.len();
        if let [one] = &s.rosters[..] {
            s.queued.extend_from_slice(one);
        } else {
            s.queued.extend_from_slice(&merge_all_clients(&s.rosters));
        }
        self.budget.release(s.roster_bytes);
        self.budget.charge(s.queued.len() - before);
        s.rosters.clear();
        s.roster_bytes = 0;
    }

    /// Moves everything queued into `batch` (whose old allocation becomes
    /// the queue's), counting it in flight; false if nothing was queued.
    fn take(&self, s: &mut State, batch: &mut Vec<u8>) -> bool {
        self.settle_rosters(s);
        batch.clear();
        if s.queued.is_empty() {
            return false;
        }
        std::mem::swap(&mut s.queued, batch);
        s.in_flight += batch.len();
        s.progress = Instant::now();
        s.full_since = None;
        s.waking_later = false;
        // Do not let one burst pin a large buffer for the connection's life.
        if s.queued.capacity() > KEEP_QUEUE {
            s.queued = Vec::new();
        }
        true
    }

    /// With the turn (as [`Turn::Pusher`]), writes `first` and then what is
    /// queued, without blocking. What the socket does not take, and what is
    /// still queued after [`DIRECT_ROUNDS`], goes to the writer thread.
    fn write_through<'a>(
        self: &'a Arc<Self>,
        mut s: MutexGuard<'a, State>,
        mut first: Option<&[u8]>,
    ) {
        let mut batch = Vec::new();
        for _ in 0..DIRECT_ROUNDS {
            let out: &[u8] = match first.take() {
                Some(frame) => frame,
                None if self.take(&mut s, &mut batch) => &batch,
                None => break,
            };
            drop(s);
            let sent = self.link.try_send(out);
            s = self.lock();
            // What was in flight is sent, or held by the link (counted
            // again below), or given up by an abort meanwhile.
            self.budget.release(s.in_flight);
            s.in_flight = 0;
            match sent {
                Ok(Sent::All) => s.progress = Instant::now(),
                Ok(Sent::Partly { held }) => {
                    s.in_flight = held;
                    self.budget.charge(held);
                    self.hand_to_writer(s);
                    return;
                }
                Err(e) => {
                    drop(s);
                    self.abort(send_failure(&e));
                    s = self.lock();
                    break;
                }
            }
        }
        if s.queued.is_empty() && s.rosters.is_empty() {
            self.give_up_turn(s);
        } else {
            self.hand_to_writer(s);
        }
    }

    /// Gives up the turn, with nothing queued; a finishing outbox is
    /// finished by its writer thread first.
    fn give_up_turn<'a>(self: &'a Arc<Self>, mut s: MutexGuard<'a, State>) {
        if s.finishing && !s.closed {
            if s.failure.is_some() {
                // Aborted: the socket is shut down, nothing more to say.
                self.mark_closed(&mut s);
            } else {
                self.hand_to_writer(s);
                return;
            }
        }
        s.turn = Turn::Free;
    }

    /// Gives the turn to the writer thread, starting one if none is about.
    fn hand_to_writer<'a>(self: &'a Arc<Self>, mut s: MutexGuard<'a, State>) {
        s.turn = Turn::Writer;
        if s.writer_alive {
            drop(s);
            self.for_writer.notify_one();
            return;
        }
        s.writer_alive = true;
        drop(s);
        let outbox = self.clone();
        let spawned = thread::Builder::new()
            .name("write".into())
            .stack_size(WRITER_STACK)
            .spawn(move || outbox.write_loop());
        let mut s = self.lock();
        match spawned {
            Ok(handle) => s.writer = Some(handle),
            Err(e) => {
                s.writer_alive = false;
                drop(s);
                self.abort(LeaveReason::ConnectionLost {
                    detail: format!("the server could not start a thread to write to it: {e}"),
                });
                let mut s = self.lock();
                s.turn = Turn::Free;
                self.mark_closed(&mut s);
            }
        }
    }

    /// Nothing more will be written: wakes whoever waits for that.
    fn mark_closed(&self, s: &mut State) {
        s.closed = true;
        self.for_close.notify_all();
        self.for_writer.notify_all();
    }

    /// The writer thread: sends with blocking writes while it has the turn;
    /// closes the sending side once the outbox is finishing and everything
    /// is sent; ends after [`WRITER_LINGER`] without work, or once closed.
    fn write_loop(self: Arc<Self>) {
        let mut batch = Vec::new();
        let mut s = self.lock();
        loop {
            // The turn is ours: send everything, the link's leftovers first.
            drop(s);
            let flushed = self.link.flush();
            s = self.lock();
            if let Err(e) = flushed {
                drop(s);
                self.abort(send_failure(&e));
                s = self.lock();
            }
            self.budget.release(s.in_flight);
            s.in_flight = 0;
            if self.take(&mut s, &mut batch) {
                drop(s);
                let sent = self.link.send(&batch);
                if let Err(e) = sent {
                    self.abort(send_failure(&e));
                }
                s = self.lock();
                continue;
            }
            if s.finishing {
                if !s.closed {
                    drop(s);
                    self.link.finish();
                    s = self.lock();
                    self.mark_closed(&mut s);
                }
                s.turn = Turn::Free;
                s.writer_alive = false;
                return;
            }
            s.turn = Turn::Free;
            if batch.capacity() > KEEP_IDLE {
                batch = Vec::new();
            }
            // Wait to be handed the turn again, for a while; a finishing
            // outbox is handed it by whoever has it, or closed.
            loop {
                let (guard, waited) = self
                    .for_writer
                    .wait_timeout(s, WRITER_LINGER)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                s = guard;
                if s.turn == Turn::Writer {
                    break;
                }
                if s.closed {
                    // The closing connection waits for this thread.
                    s.writer_alive = false;
                    return;
                }
                if waited.timed_out() && !s.finishing {
                    // Nobody waits for a thread that ends of its own accord.
                    s.writer_alive = false;
                    s.writer = None;
                    return;
                }
            }
        }
    }

    /// Asks the flusher's question: writes what [`Outbox::push_later`]
    /// queued, if nobody has meanwhile.
    fn flush_later(self: &Arc<Self>) {
        let mut s = self.lock();
        if !s.waking_later {
            return;
        }
        s.waking_later = false;
        if s.turn != Turn::Free || s.finishing {
            return;
        }
        self.send_all_now(s);
    }

    /// Accepts no more frames; what is queued is sent, then the sending
    /// side of the socket is closed. Does not block: a writer thread sends
    /// what the socket does not take at once.
    pub fn finish(self: &Arc<Self>) {
        let mut s = self.lock();
        if s.finishing {
            return;
        }
        s.finishing = true;
        if s.turn != Turn::Free {
            // Whoever has the turn hands it to the writer thread, which
            // finishes; a writer waiting meanwhile goes on waiting.
            return;
        }
        if !SENDS_WITHOUT_BLOCKING || !s.queued.is_empty() || !s.rosters.is_empty() {
            self.hand_to_writer(s);
            return;
        }
        s.turn = Turn::Pusher;
        drop(s);
        let done = self.link.finish_now();
        let mut s = self.lock();
        if done {
            s.turn = Turn::Free;
            self.mark_closed(&mut s);
        } else {
            self.hand_to_writer(s);
        }
    }

    /// Finishes the outbox (see [`Outbox::finish`]) and waits until
    /// everything queued is sent (or the socket's write timeout passed) and
    /// its writer thread has ended. For the connection's own thread, at
    /// its end.
    pub fn close(self: &Arc<Self>) {
        self.finish();
        let mut s = self.lock();
        while !s.closed {
            s = self
                .for_close
                .wait(s)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let writer = s.writer.take();
        drop(s);
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// Drops whatever is queued and shuts the socket down at once, waking
    /// the writer and the reader. For clients that must go now.
    pub fn abort(&self, reason: LeaveReason) {
        {
            let mut s = self.lock();
            s.finishing = true;
            // What is in flight is given up too: the socket is shut down
            // under it, so it is freed as soon as its write fails.
            self.budget
                .release(s.queued.len() + s.roster_bytes + s.in_flight);
            s.queued = Vec::new();
            s.rosters = Vec::new();
            s.roster_bytes = 0;
            s.in_flight = 0;
            s.failure.get_or_insert(reason);
            if s.turn == Turn::Free && !s.closed {
                self.mark_closed(&mut s);
            }
        }
        self.for_writer.notify_all();
        let _ = self.link.stream().shutdown(Shutdown::Both);
    }

    /// If this client has left bytes waiting for at least `after` (nothing
    /// left for its socket meanwhile), how many it holds: a client that
    /// reads takes its queue within moments of each write.
    pub fn stuck(&self, now: Instant, after: Duration) -> Option<usize> {
        let s = self.lock();
        let held = s.queued.len() + s.roster_bytes + s.in_flight;
        (held > 0 && !s.finishing && now.saturating_duration_since(s.progress) >= after)
            .then_some(held)
    }

    /// Why the sending side failed, if it did.
    pub fn failure(&self) -> Option<LeaveReason> {
        self.lock().failure.clone()
    }

    /// Whether a writer thread exists for this client now (for tests and
    /// figures: quiet clients have none).
    pub fn has_writer(&self) -> bool {
        self.lock().writer_alive
    }

    /// The outbox is plain data: still consistent if a thread panicked
    /// while holding it.
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
        self.budget
            .release(s.queued.len() + s.roster_bytes + s.in_flight);
    }
}

/// Outboxes one thread has queued frames in with [`Outbox::push_deferred`]
/// and must write before it waits for anything.
#[derive(Default)]
pub struct Deferred(Vec<Arc<Outbox>>);

impl Deferred {
    fn note(&mut self, outbox: &Arc<Outbox>) {
        if !self.0.iter().any(|o| Arc::ptr_eq(o, outbox)) {
            self.0.push(outbox.clone());
        }
    }

    /// Writes everything queued in the outboxes noted.
    pub fn send_all(&mut self) {
        for outbox in self.0.drain(..) {
            outbox.send_queued();
        }
    }
}

impl Drop for Deferred {
    /// Nothing noted is left unsent, however its thread ends.
    fn drop(&mut self) {
        self.send_all();
    }
}

/// Why a write to the client failed: a timeout means it stopped reading.
fn send_failure(e: &std::io::Error) -> LeaveReason {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        LeaveReason::StoppedReading
    } else {
        LeaveReason::ConnectionLost {
            detail: e.to_string(),
        }
    }
}

/// The one thread that writes what [`Outbox::push_later`] queued. It sleeps
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
        // How many outboxes the last round wrote.
        let mut written = 0;
        loop {
            let mut due = self.lock();
            while due.is_empty() {
                if trimmed {
                    // Quiet for a while: the next burst starts afresh.
                    written = 0;
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
            // longer the more outboxes the last round wrote.
            thread::sleep(pace_after(written));
            std::mem::swap(&mut *self.lock(), &mut batch);
            written = batch.len();
            for outbox in batch.drain(..) {
                outbox.flush_later();
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

/// How long the flusher waits before its next round, after one that wrote
/// `written` outboxes: see [`PACE_PER_WRITER`].
fn pace_after(written: usize) -> Duration {
    let written = u32::try_from(written).unwrap_or(u32::MAX);
    LATER.max(PACE_PER_WRITER.saturating_mul(written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::connection::FrameReader;
    use crate::common::packet::{encode_all_clients, Profile, Roster, ServerPacket};
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// An outbox writing to a real socket on loopback, and the client's end
    /// of it.
    fn connected(limits: QueueLimits) -> (Arc<Outbox>, TcpStream, Budget) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_write_timeout(Some(limits.grace)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let budget = Budget::unlimited();
        let link = Link::plain(Arc::new(server));
        (
            Arc::new(Outbox::new(link, limits, budget.clone())),
            client,
            budget,
        )
    }

    fn roomy() -> QueueLimits {
        QueueLimits {
            soft_bytes: 64 << 20,
            hard_bytes: 128 << 20,
            grace: Duration::from_secs(10),
        }
    }

    fn message(i: usize) -> Vec<u8> {
        ServerPacket::Message {
            from: "client0".into(),
            to: "client1".into(),
            text: format!("message {i:06} {}\n", "x".repeat(200)),
        }
        .encode()
    }

    fn read_packets(client: TcpStream, n: usize) -> Vec<ServerPacket> {
        let mut reader = FrameReader::new(client, 1 << 20);
        (0..n)
            .map(|_| {
                let body = reader.read_frame().unwrap().expect("a frame");
                ServerPacket::decode(body).unwrap()
            })
            .collect()
    }

    fn texts(packets: &[ServerPacket]) -> Vec<String> {
        packets
            .iter()
            .map(|p| match p {
                ServerPacket::Message { text, .. } => text.clone(),
                other => panic!("expected a message, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_client_that_reads_is_written_to_without_a_thread_of_its_own() {
        let (outbox, client, budget) = connected(roomy());
        for i in 0..100 {
            outbox.push(&message(i)).unwrap();
        }
        let got = read_packets(client, 100);
        assert_eq!(
            texts(&got),
            texts(&(0..100).map(|i| decode(&message(i))).collect::<Vec<_>>())
        );
        if SENDS_WITHOUT_BLOCKING {
            assert!(
                !outbox.has_writer(),
                "no writer thread for a reading client"
            );
        }
        assert_eq!(budget.queued(), 0, "nothing is left counted");
    }

    fn decode(frame: &[u8]) -> ServerPacket {
        ServerPacket::decode(&frame[crate::common::frame::HEADER_LEN..]).unwrap()
    }

    #[test]
    fn a_client_that_falls_behind_gets_a_writer_and_everything_in_order() {
        let (outbox, client, budget) = connected(roomy());
        // Far more than a socket's buffers hold, while the client reads
        // nothing.
        let n = 20_000;
        for i in 0..n {
            outbox.push(&message(i)).unwrap();
        }
        assert!(outbox.has_writer(), "a writer thread took over the queue");
        assert!(budget.queued() > 0, "the queue is counted in the budget");
        let got = read_packets(client, n);
        let expected: Vec<ServerPacket> = (0..n).map(|i| decode(&message(i))).collect();
        assert_eq!(
            texts(&got),
            texts(&expected),
            "every message, once, in order"
        );
        let deadline = Instant::now() + WRITER_LINGER * 3;
        while outbox.has_writer() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        assert!(
            !outbox.has_writer(),
            "the writer ends once the client is idle"
        );
        assert_eq!(budget.queued(), 0, "nothing is left counted");
    }

    #[test]
    fn newcomers_pushed_together_are_told_in_one_roster_before_what_follows() {
        let (outbox, client, _) = connected(roomy());
        let profile = |name: &str| Profile {
            name: name.into(),
            color: "blue".into(),
            image_name: "image_1.png".into(),
            files: false,
        };
        let (bob, carol) = (profile("bob"), profile("carol"));
        let rosters: Vec<Arc<[u8]>> = [("client1", &bob), ("client2", &carol)]
            .iter()
            .map(|e| encode_all_clients(std::slice::from_ref(e)).into())
            .collect();
        for roster in &rosters {
            outbox.push_roster(roster).unwrap();
        }
        outbox.push(&message(7)).unwrap();
        let got = read_packets(client, 2);
        assert_eq!(
            got[0],
            ServerPacket::AllClients(Roster(vec![
                ("client1".into(), bob),
                ("client2".into(), carol)
            ])),
            "one roster listing both newcomers"
        );
        assert_eq!(got[1], decode(&message(7)), "then the message");
    }

    #[test]
    fn rosters_alone_go_out_within_a_moment() {
        let (outbox, client, _) = connected(roomy());
        let alice = Profile {
            name: "alice".into(),
            color: "blue".into(),
            image_name: "image_1.png".into(),
            files: false,
        };
        let roster: Arc<[u8]> = encode_all_clients(&[("client0", &alice)]).into();
        let pushed = Instant::now();
        outbox.push_roster(&roster).unwrap();
        let got = read_packets(client, 1);
        assert_eq!(got[0], decode(&roster));
        assert!(pushed.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn nothing_is_sent_from_a_client_that_has_left() {
        let (outbox, client, _) = connected(roomy());
        let here = AtomicBool::new(false);
        outbox.push_from(&message(1), Some(&here)).unwrap();
        let mut deferred = Deferred::default();
        outbox
            .push_deferred(&message(2), Some(&here), &mut deferred)
            .unwrap();
        deferred.send_all();
        here.store(true, Ordering::Release);
        outbox.push_from(&message(3), Some(&here)).unwrap();
        assert_eq!(
            texts(&read_packets(client, 1)),
            texts(&[decode(&message(3))])
        );
    }

    #[test]
    fn deferred_frames_wait_for_send_all_and_go_out_in_order() {
        let (outbox, mut client, _) = connected(roomy());
        let mut deferred = Deferred::default();
        for i in 0..3 {
            outbox
                .push_deferred(&message(i), None, &mut deferred)
                .unwrap();
        }
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(client.read(&mut byte).is_err(), "nothing written yet");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        deferred.send_all();
        let expected: Vec<ServerPacket> = (0..3).map(|i| decode(&message(i))).collect();
        assert_eq!(texts(&read_packets(client, 3)), texts(&expected));
    }

    #[test]
    fn closing_sends_what_is_queued_then_ends_the_stream() {
        let (outbox, mut client, _) = connected(roomy());
        let n = 5_000;
        for i in 0..n {
            outbox.push(&message(i)).unwrap();
        }
        let closing = {
            let outbox = outbox.clone();
            thread::spawn(move || outbox.close())
        };
        let mut all = Vec::new();
        client.read_to_end(&mut all).unwrap();
        closing.join().unwrap();
        let expected: Vec<u8> = (0..n).flat_map(message).collect();
        assert_eq!(all.len(), expected.len());
        assert!(all == expected, "every byte, in order, then the end");
        assert!(!outbox.has_writer());
    }

    #[test]
    fn many_senders_at_once_each_arrive_once_and_in_their_order() {
        let (outbox, client, budget) = connected(roomy());
        let (senders, each) = (8, 3_000);
        // A reader that keeps stopping for a moment while 10 MB arrive,
        // so the socket fills now and then and the turn passes between
        // senders, flusher rounds and the writer thread.
        let reading = thread::spawn(move || {
            let mut reader = FrameReader::new(client, 1 << 20);
            let mut got = Vec::new();
            thread::sleep(Duration::from_millis(200));
            while got.len() < senders * each {
                let body = reader.read_frame().unwrap().expect("a frame");
                if let ServerPacket::Message { text, .. } = ServerPacket::decode(body).unwrap() {
                    got.push(text);
                }
                if got.len() % 3_000 == 0 {
                    thread::sleep(Duration::from_millis(50));
                }
            }
            got
        });
        let alice = Profile {
            name: "alice".into(),
            color: "blue".into(),
            image_name: "image_1.png".into(),
            files: false,
        };
        let roster: Arc<[u8]> = encode_all_clients(&[("client9", &alice)]).into();
        let pushing: Vec<_> = (0..senders)
            .map(|n| {
                let (outbox, roster) = (outbox.clone(), roster.clone());
                thread::spawn(move || {
                    let mut deferred = Deferred::default();
                    for i in 0..each {
                        let frame = ServerPacket::Message {
                            from: "client0".into(),
                            to: "client1".into(),
                            text: format!("{n} {i} {}", "x".repeat(400)),
                        }
                        .encode();
                        match i % 3 {
                            0 => outbox.push(&frame).unwrap(),
                            1 => outbox.push_deferred(&frame, None, &mut deferred).unwrap(),
                            _ => outbox.push_later(&frame).unwrap(),
                        }
                        if i % 10 == 0 {
                            deferred.send_all();
                            outbox.push_roster(&roster).unwrap();
                        }
                    }
                })
            })
            .collect();
        for p in pushing {
            p.join().unwrap();
        }
        let got = reading.join().unwrap();
        for n in 0..senders {
            let mine: Vec<usize> = got
                .iter()
                .filter_map(|t| t.strip_prefix(&format!("{n} ")))
                .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
                .collect();
            let wrong = mine.iter().enumerate().find(|(at, &i)| *at != i);
            assert!(
                mine.len() == each && wrong.is_none(),
                "sender {n}: {} of {each} arrived; the first out of place: {wrong:?}",
                mine.len()
            );
        }
        outbox.close();
        assert_eq!(budget.queued(), 0, "nothing is left counted");
    }

    #[test]
    fn a_client_that_never_reads_is_dropped_at_the_hard_limit() {
        let (outbox, _client, budget) = connected(QueueLimits {
            soft_bytes: 256 << 10,
            hard_bytes: 1 << 20,
            grace: Duration::from_secs(10),
        });
        let overflowed = (0..100_000).any(|i| outbox.push(&message(i)).is_err());
        assert!(overflowed, "the queue overflows instead of growing");
        outbox.abort(LeaveReason::StoppedReading);
        outbox.close();
        assert_eq!(budget.queued(), 0, "its bytes leave the budget");
    }

    #[test]
    fn roster_rounds_are_spaced_by_the_crowd_they_wrote() {
        assert_eq!(pace_after(0), LATER);
        assert_eq!(pace_after(100), LATER);
        assert_eq!(pace_after(200), Duration::from_millis(50));
        assert_eq!(pace_after(1_000), Duration::from_millis(250));
        assert_eq!(pace_after(10_000), Duration::from_millis(2_500));
        assert!(pace_after(usize::MAX) >= Duration::from_secs(60));
    }
}
