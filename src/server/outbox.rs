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

use std::net::{Shutdown, TcpStream};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    stream: TcpStream,
    limits: QueueLimits,
}

#[derive(Default)]
struct State {
    queued: Vec<u8>,
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
    pub fn new(stream: TcpStream, limits: QueueLimits) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            stream,
            limits,
        }
    }

    /// Appends one whole frame. Frames pushed after `finish` or `abort` are
    /// dropped, since that connection is closing.
    pub fn push(&self, frame: &[u8]) -> Result<(), Overflow> {
        let mut s = self.lock();
        if s.finishing {
            return Ok(());
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
        let wake = s.queued.is_empty();
        s.queued.extend_from_slice(frame);
        drop(s);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
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
            s.queued = Vec::new();
            s.failure.get_or_insert(reason);
        }
        self.ready.notify_one();
        let _ = self.stream.shutdown(Shutdown::Both);
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
        s.full_since = None;
        // Do not let one burst pin a large buffer for the connection's life.
        if s.queued.capacity() > self.limits.soft_bytes {
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
