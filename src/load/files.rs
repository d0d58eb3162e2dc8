//! `hubchat-load files`: files through the hub, measured against the same
//! bytes through bare TCP socket pairs in the same run.
//!
//! A file costs the hub more than a socket pair costs the kernel: every
//! chunk is read, decoded, framed again and written once more. This says how
//! much more: N transfers at once, each from a sender client of its own to a
//! receiver client of its own, flow-controlled as HubChat does (a window of
//! [`WINDOW`], acknowledged every [`ACK_EVERY`] bytes), and, first in the
//! same run, the same bytes through N bare socket pairs on 127.0.0.1 as the
//! reference.
//!
//! The tool's clients are lean so that the relay is measured, not the tool
//! or a disk: a sender sends its chunks straight from one buffer in memory,
//! a receiver reads each chunk into one buffer, checks it and drops it. Every
//! byte is checked, through the hub and through the bare pairs alike (see
//! `Content` and `Receipt`), so a gap, a repeat, a chunk at the wrong
//! offset or a short file fails the run. Meanwhile two clients chat at a
//! steady rate and the server's memory is sampled, so the report also says
//! what the transfers cost everyone else.
//!
//! Like `attack`, it runs against this machine's loopback only, and its
//! clients come from loopback addresses of their own (see [`Source`]), so a
//! server's per-address limit does not get in the way.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::files::ACK_EVERY;
use crate::common::connection::{is_timeout, FrameReader, ReadError};
use crate::common::file_packet::{
    CancelReason, FileMsg, FilePacket, Offer, CHUNK, FILE_DATA, WINDOW,
};
use crate::common::frame::{self, HEADER_LEN};
use crate::common::packet::{ClientPacket, ServerPacket};
use crate::load::attack::{self, Joined};
use crate::load::attack_net::{self, connect_from, Source};
use crate::load::stamp::{self, Tally};
use crate::load::wire::{self, Seen};

/// The goals of the issue that asked for this measurement, on loopback.
pub const GOAL_RATIO: f64 = 0.5;
pub const GOAL_CHAT_P99_MS: f64 = 5.0;
pub const GOAL_RSS_MB: f64 = 64.0;

/// Bytes in the tool's MB (a MiB): sizes and speeds both use it.
const MB: f64 = (1u64 << 20) as f64;

/// How often the server's memory is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// The largest frame body the tool's clients accept: a chunk and its head
/// fit many times over; a roster of a busy server too.
const MAX_IN: usize = 4 << 20;

/// One run's settings.
#[derive(Debug, Clone)]
pub struct FilesOptions {
    /// The server, already checked to be loopback.
    pub server: SocketAddr,
    /// Each file's size in MB (MiB).
    pub size_mb: u64,
    /// Transfers at once.
    pub transfers: usize,
    /// Messages a second each of the chatting pair sends; 0 for no chat.
    pub chat_rate: f64,
    /// The server's process, to read its memory.
    pub server_pid: Option<u32>,
    /// How long a client waits for the next thing it needs before the
    /// transfer counts as failed.
    pub patience: Duration,
    pub progress: bool,
}

impl Default for FilesOptions {
    fn default() -> Self {
        FilesOptions {
            server: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 5050),
            size_mb: 1024,
            transfers: 1,
            chat_rate: 15.0,
            server_pid: None,
            patience: Duration::from_secs(10),
            progress: false,
        }
    }
}

impl FilesOptions {
    /// Each file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size_mb << 20
    }
}

/// Why a run could not be made (as opposed to a file that went wrong,
/// which the report tells).
#[derive(Debug)]
pub enum FilesError {
    /// A client of the run could not join the server.
    Join { who: String, why: String },
    /// The bare socket pairs could not be made.
    Reference(io::Error),
    /// The system would not start a thread.
    Thread(io::Error),
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesError::Join { who, why } => write!(f, "the {who} could not join: {why}"),
            FilesError::Reference(e) => {
                write!(f, "cannot make the bare socket pairs on 127.0.0.1: {e}")
            }
            FilesError::Thread(e) => write!(f, "cannot start a thread: {e}"),
        }
    }
}

impl std::error::Error for FilesError {}

/// What went wrong with one file, through the hub or a bare pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A chunk began at `got` when `expected` bytes had arrived: bytes were
    /// lost, or came twice.
    Gap { expected: u64, got: u64 },
    /// The bytes at `offset` are not the file's.
    Damaged { offset: u64 },
    /// Bytes beyond the file's `size` arrived.
    TooLong { size: u64 },
    /// Only `received` of `size` bytes arrived before `why`.
    Short {
        received: u64,
        size: u64,
        why: String,
    },
    /// FILE DONE's SHA-256 is not the file's.
    WrongHash,
    /// The server or the other side gave the transfer up, with its reason.
    Cancelled(String),
    /// The connection failed or fell silent outside the file's bytes.
    Connection(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Gap { expected, got } => write!(
                f,
                "a gap: a chunk began at byte {got} where byte {expected} was next"
            ),
            Fault::Damaged { offset } => {
                write!(f, "damaged: the bytes at {offset} are not the file's")
            }
            Fault::TooLong { size } => write!(f, "more than the file's {size} bytes arrived"),
            Fault::Short {
                received,
                size,
                why,
            } => write!(f, "short: only {received} of {size} bytes arrived ({why})"),
            Fault::WrongHash => write!(f, "FILE DONE's SHA-256 is not the file's"),
            Fault::Cancelled(why) => write!(f, "given up: {why}"),
            Fault::Connection(why) => write!(f, "{why}"),
        }
    }
}

/// A file's content: byte `x` is `bytes[x % period]`. The buffer holds the
/// period twice, so any `len <= period` bytes from any offset are one
/// slice: senders send from it and receivers compare with it, no copies.
struct Content {
    period: usize,
    bytes: Vec<u8>,
}

/// Neither a multiple nor a divisor of [`CHUNK`]: every chunk of a file
/// differs from the one before, so a chunk given the wrong offset is seen.
const PERIOD: usize = CHUNK + 4093;

impl Content {
    fn new() -> Content {
        // xorshift64: bytes that look like a compressed file's.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut bytes = Vec::with_capacity(2 * PERIOD);
        for _ in 0..PERIOD {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push((x >> 24) as u8);
        }
        bytes.extend_from_within(..PERIOD);
        Content {
            period: PERIOD,
            bytes,
        }
    }

    /// The file's `len` bytes from `offset` (at most a period of them).
    fn at(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % self.period as u64) as usize;
        &self.bytes[start..start + len.min(self.period)]
    }

    /// Whether `bytes` are the file's bytes at `offset`.
    fn holds(&self, offset: u64, bytes: &[u8]) -> bool {
        bytes.len() <= self.period && self.at(offset, bytes.len()) == bytes
    }

    /// The SHA-256 of a file of `size` bytes, for FILE DONE.
    fn sha256(&self, size: u64) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut offset = 0;
        while offset < size {
            let len = (size - offset).min(CHUNK as u64) as usize;
            ctx.update(self.at(offset, len));
            offset += len as u64;
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// A receiver's account of its file: each chunk must continue where the
/// last ended and hold the file's bytes. An acknowledgement is due every
/// [`ACK_EVERY`] bytes and at the end, as HubChat's receiver sends them.
struct Receipt<'c> {
    content: &'c Content,
    size: u64,
    received: u64,
    acked: u64,
    /// When the last byte arrived.
    whole_at: Option<Instant>,
}

impl<'c> Receipt<'c> {
    fn new(content: &'c Content, size: u64) -> Self {
        Receipt {
            content,
            size,
            received: 0,
            acked: 0,
            whole_at: (size == 0).then(Instant::now),
        }
    }

    /// Takes the chunk at `offset`; `Some(n)`: acknowledge `n` bytes now.
    fn chunk(&mut self, offset: u64, bytes: &[u8]) -> Result<Option<u64>, Fault> {
        if offset != self.received {
            return Err(Fault::Gap {
                expected: self.received,
                got: offset,
            });
        }
        let end = offset + bytes.len() as u64;
        if end > self.size {
            return Err(Fault::TooLong { size: self.size });
        }
        if !self.content.holds(offset, bytes) {
            return Err(Fault::Damaged { offset });
        }
        self.received = end;
        if end == self.size {
            self.whole_at = Some(Instant::now());
        }
        let due = end - self.acked >= ACK_EVERY || end == self.size;
        if due && end > self.acked {
            self.acked = end;
            return Ok(Some(end));
        }
        Ok(None)
    }

    /// The sender says it is done, with the file's hash.
    fn done(&self, sha256: &[u8; 32], expected: &[u8; 32]) -> Result<(), Fault> {
        if self.received < self.size {
            return Err(self.short("the sender said it was done"));
        }
        if sha256 != expected {
            return Err(Fault::WrongHash);
        }
        Ok(())
    }

    fn short(&self, why: impl Into<String>) -> Fault {
        Fault::Short {
            received: self.received,
            size: self.size,
            why: why.into(),
        }
    }
}

/// What became of one file, through the hub or a bare pair.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    /// Bytes its receiver took, in order and checked.
    pub received: u64,
    /// Seconds from the start to its last byte, when every byte arrived.
    pub seconds: Option<f64>,
    /// What went wrong for the receiver (or a bare pair's reader).
    pub fault: Option<Fault>,
    /// What went wrong for the sender through the hub: FILE SAVED not
    /// coming back counts too.
    pub sender_fault: Option<Fault>,
}

impl Transfer {
    pub fn intact(&self) -> bool {
        self.fault.is_none() && self.sender_fault.is_none() && self.seconds.is_some()
    }

    /// Each side's fault, in words.
    fn faults(&self) -> impl Iterator<Item = (&'static str, &Fault)> {
        let receiver = self.fault.as_ref().map(|f| ("receiver", f));
        receiver
            .into_iter()
            .chain(self.sender_fault.as_ref().map(|f| ("sender", f)))
    }
}

/// The chatting pair's figures.
#[derive(Debug, Clone, Default)]
pub struct ChatFigures {
    pub rate: f64,
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    /// One-way latency in milliseconds: p50, p99, max.
    pub ms: [f64; 3],
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct FilesReport {
    /// Through the hub, one per transfer.
    pub hub: Vec<Transfer>,
    /// From the offers to the last file's last byte.
    pub hub_seconds: f64,
    /// Through bare socket pairs, one per pair.
    pub bare: Vec<Transfer>,
    pub bare_seconds: f64,
    pub chat: Option<ChatFigures>,
    /// The server's resident memory in KiB: before the clients joined, and
    /// the highest sampled until the transfers ended.
    pub rss_kib: Option<(u64, u64)>,
}

fn bytes(ts: &[Transfer]) -> u64 {
    ts.iter().map(|t| t.received).sum()
}

fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / MB / seconds
    } else {
        0.0
    }
}

impl FilesReport {
    pub fn hub_mb_per_s(&self) -> f64 {
        mb_per_s(bytes(&self.hub), self.hub_seconds)
    }

    pub fn bare_mb_per_s(&self) -> f64 {
        mb_per_s(bytes(&self.bare), self.bare_seconds)
    }

    /// The hub's speed over the bare pairs'.
    pub fn ratio(&self) -> f64 {
        let bare = self.bare_mb_per_s();
        if bare > 0.0 {
            self.hub_mb_per_s() / bare
        } else {
            0.0
        }
    }

    /// Files that arrived whole, in order and checked, through the hub.
    pub fn intact(&self) -> usize {
        self.hub.iter().filter(|t| t.intact()).count()
    }

    /// Every file arrived whole both ways, and no chat message was lost.
    pub fn clean(&self) -> bool {
        self.hub.iter().chain(&self.bare).all(Transfer::intact)
            && self.chat.as_ref().is_none_or(|c| c.lost == 0)
    }

    /// Each goal: a key for scripts, its words, and whether it held
    /// (`None`: not measured).
    pub fn goals(&self) -> [(&'static str, String, Option<bool>); 3] {
        [
            (
                "ratio",
                format!("ratio >= {GOAL_RATIO:.2}"),
                Some(self.ratio() >= GOAL_RATIO),
            ),
            (
                "chat_p99",
                format!("chat p99 < {GOAL_CHAT_P99_MS} ms"),
                self.chat
                    .as_ref()
                    .filter(|c| c.delivered > 0)
                    .map(|c| c.ms[1] < GOAL_CHAT_P99_MS),
            ),
            (
                "server_rss",
                format!("server RSS < {GOAL_RSS_MB} MB"),
                self.rss_kib
                    .map(|(_, peak)| (peak as f64 / 1024.0) < GOAL_RSS_MB),
            ),
        ]
    }

    /// Every goal that was measured held.
    pub fn goals_met(&self) -> bool {
        self.goals().iter().all(|(_, _, met)| met.unwrap_or(true))
    }
}

fn progress(opts: &FilesOptions, line: &str) {
    if opts.progress {
        eprintln!("hubchat-load files: {line}");
    }
}

/// Runs the measurement: the bare pairs first, then the hub with the chat
/// and the memory sampled.
pub fn run(opts: &FilesOptions) -> Result<FilesReport, FilesError> {
    let size = opts.size();
    let content = Arc::new(Content::new());
    let hashing = Instant::now();
    let job = Job {
        size,
        sha256: content.sha256(size),
        content,
        patience: opts.patience,
    };
    progress(
        opts,
        &format!(
            "the file's SHA-256 (for FILE DONE) made in {:.2} s",
            hashing.elapsed().as_secs_f64()
        ),
    );
    progress(
        opts,
        &format!(
            "bare TCP: {} socket pair{} on 127.0.0.1, {} MB each",
            opts.transfers,
            plural(opts.transfers),
            opts.size_mb
        ),
    );
    let (bare, bare_seconds) = bare_pairs(opts.transfers, &job)?;
    let mut report = FilesReport {
        bare,
        bare_seconds,
        ..FilesReport::default()
    };
    let sampler = opts.server_pid.map(Sampler::start).transpose()?;
    through_hub(opts, &job, &mut report)?;
    report.rss_kib = sampler.and_then(Sampler::finish);
    Ok(report)
}

/// What every transfer carries, and how long its clients wait.
#[derive(Clone)]
struct Job {
    size: u64,
    content: Arc<Content>,
    sha256: [u8; 32],
    patience: Duration,
}

/// Holds threads until the clock starts. [`Gate::pass`] returns once the
/// main thread opens it: `false` if the run was called off instead.
#[derive(Default)]
struct Gate {
    lock: RwLock<()>,
    off: AtomicBool,
}

impl Gate {
    fn close(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock.write().unwrap_or_else(|p| p.into_inner())
    }

    fn pass(&self) -> bool {
        drop(self.lock.read().unwrap_or_else(|p| p.into_inner()));
        !self.off.load(Ordering::SeqCst)
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, FilesError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(FilesError::Thread)
}

/// `n` socket pairs on 127.0.0.1, each carrying a file's bytes one way:
/// the writer sends chunks from memory, the reader checks and drops them.
/// Returns each pair's transfer and the seconds until the last one ended.
fn bare_pairs(n: usize, job: &Job) -> Result<(Vec<Transfer>, f64), FilesError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(FilesError::Reference)?;
    let addr = listener.local_addr().map_err(FilesError::Reference)?;
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let out = TcpStream::connect(addr).map_err(FilesError::Reference)?;
        let (into, _) = listener.accept().map_err(FilesError::Reference)?;
        for s in [&out, &into] {
            s.set_nodelay(true).map_err(FilesError::Reference)?;
            s.set_read_timeout(Some(job.patience))
                .map_err(FilesError::Reference)?;
            s.set_write_timeout(Some(job.patience))
                .map_err(FilesError::Reference)?;
        }
        pairs.push((out, into));
    }
    let gate = Arc::new(Gate::default());
    let closed = gate.close();
    let mut writers = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    let mut spawned = Ok(());
    for (i, (out, into)) in pairs.into_iter().enumerate() {
        let (gate, content, size) = (gate.clone(), job.content.clone(), job.size);
        match spawn(&format!("bare-write-{i}"), move || {
            if gate.pass() {
                bare_write(out, &content, size);
            }
        }) {
            Ok(w) => writers.push(w),
            Err(e) => {
                spawned = Err(e);
                break;
            }
        }
        let (content, size, patience) = (job.content.clone(), job.size, job.patience);
        match spawn(&format!("bare-read-{i}"), move || {
            bare_read(into, &content, size, patience)
        }) {
            Ok(r) => readers.push(r),
            Err(e) => {
                spawned = Err(e);
                break;
            }
        }
    }
    if spawned.is_err() {
        gate.off.store(true, Ordering::SeqCst);
    }
    let begun = Instant::now();
    drop(closed);
    spawned?;
    let ends: Vec<(Transfer, Option<Instant>)> = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_else(|_| panicked()))
        .collect();
    for w in writers {
        let _ = w.join();
    }
    Ok(timed(ends, begun))
}

fn panicked() -> (Transfer, Option<Instant>) {
    let t = Transfer {
        fault: Some(Fault::Connection("its thread panicked".into())),
        ..Transfer::default()
    };
    (t, None)
}

/// Each transfer with its seconds from `begun`, and the seconds until the
/// last one ended (until now if none did).
fn timed(ends: Vec<(Transfer, Option<Instant>)>, begun: Instant) -> (Vec<Transfer>, f64) {
    let last = ends.iter().filter_map(|(_, end)| *end).max();
    let seconds = last
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(begun)
        .as_secs_f64();
    let transfers = ends
        .into_iter()
        .map(|(mut t, end)| {
            t.seconds = end.map(|e| e.saturating_duration_since(begun).as_secs_f64());
            t
        })
        .collect();
    (transfers, seconds)
}

fn bare_write(mut out: TcpStream, content: &Content, size: u64) {
    let mut sent = 0;
    while sent < size {
        let len = (size - sent).min(CHUNK as u64) as usize;
        if out.write_all(content.at(sent, len)).is_err() {
            break;
        }
        sent += len as u64;
    }
    let _ = out.shutdown(std::net::Shutdown::Write);
}

fn bare_read(
    mut into: TcpStream,
    content: &Content,
    size: u64,
    patience: Duration,
) -> (Transfer, Option<Instant>) {
    let mut receipt = Receipt::new(content, size);
    let mut buf = vec![0u8; CHUNK];
    let fault = loop {
        let n = match into.read(&mut buf) {
            Ok(0) if receipt.received == size => break None,
            Ok(0) => break Some(receipt.short("the connection ended")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(receipt.short(silence(&e, patience))),
        };
        let offset = receipt.received;
        if let Err(fault) = receipt.chunk(offset, &buf[..n]) {
            break Some(fault);
        }
    };
    let t = Transfer {
        received: receipt.received,
        fault,
        ..Transfer::default()
    };
    (t, receipt.whole_at)
}

/// A read error in words: a timeout is silence for `patience`.
fn silence(e: &io::Error, patience: Duration) -> String {
    if is_timeout(e) {
        format!("nothing arrived for {} s", patience.as_secs_f64())
    } else {
        format!("the connection failed: {e}")
    }
}

/// Joins the transfer clients and the chat pair, starts every transfer at
/// once and waits for all; fills in the hub's part of `report`.
fn through_hub(opts: &FilesOptions, job: &Job, report: &mut FilesReport) -> Result<(), FilesError> {
    let addr = opts.server;
    let tag = format!("file-{}", std::process::id());
    progress(
        opts,
        &format!(
            "joining {} transfer clients{} at {addr}",
            2 * opts.transfers,
            if opts.chat_rate > 0.0 {
                " and a chatting pair"
            } else {
                ""
            }
        ),
    );
    let mut pairs = Vec::with_capacity(opts.transfers);
    for i in 0..opts.transfers {
        let sender = join(
            addr,
            Source::Bystander(2 * i),
            &format!("{tag}-send{i}"),
            job,
        )
        .map_err(|why| FilesError::Join {
            who: format!("sender of transfer {i}"),
            why,
        })?;
        let receiver = join(
            addr,
            Source::Bystander(2 * i + 1),
            &format!("{tag}-recv{i}"),
            job,
        )
        .map_err(|why| FilesError::Join {
            who: format!("receiver of transfer {i}"),
            why,
        })?;
        pairs.push((sender, receiver));
    }
    let chatters = if opts.chat_rate > 0.0 {
        Some(Chat::join(addr, &tag, job.patience)?)
    } else {
        None
    };

    progress(
        opts,
        &format!(
            "{} transfer{} of {} MB through the hub",
            opts.transfers,
            plural(opts.transfers),
            opts.size_mb
        ),
    );
    let gate = Arc::new(Gate::default());
    let closed = gate.close();
    let started = start_transfers(pairs, job, &gate).and_then(|handles| {
        let chat = chatters
            .map(|c| Chat::start(c, opts.chat_rate, &gate))
            .transpose()?;
        Ok((handles, chat))
    });
    if started.is_err() {
        gate.off.store(true, Ordering::SeqCst);
    }
    let begun = Instant::now();
    drop(closed);
    let ((senders, receivers), chat) = started?;

    let mut peers = Vec::new();
    let mut ends = Vec::with_capacity(receivers.len());
    for (r, s) in receivers.into_iter().zip(senders) {
        let (mut transfer, end) = match r.join() {
            Ok((t, end, peer)) => {
                peers.push(peer);
                (t, end)
            }
            Err(_) => panicked(),
        };
        let sent = match s.join() {
            Ok((sent, peer)) => {
                peers.push(peer);
                sent
            }
            Err(_) => Err(Fault::Connection("its thread panicked".into())),
        };
        transfer.sender_fault = sent.err();
        ends.push((transfer, end));
    }
    let (hub, seconds) = timed(ends, begun);
    report.hub = hub;
    report.hub_seconds = seconds;
    report.chat = chat.map(Chat::finish);
    for p in peers {
        p.leave();
    }
    Ok(())
}

type SenderHandle = JoinHandle<(Result<(), Fault>, Peer)>;
type ReceiverHandle = JoinHandle<(Transfer, Option<Instant>, Peer)>;

/// Starts each transfer's receiver (which waits for its offer) and sender
/// (which waits at the gate).
fn start_transfers(
    pairs: Vec<(Peer, Peer)>,
    job: &Job,
    gate: &Arc<Gate>,
) -> Result<(Vec<SenderHandle>, Vec<ReceiverHandle>), FilesError> {
    let mut senders = Vec::with_capacity(pairs.len());
    let mut receivers = Vec::with_capacity(pairs.len());
    for (i, (mut sender, mut receiver)) in pairs.into_iter().enumerate() {
        let transfer = format!("load-{i}");
        let (from, to) = (sender.id.clone(), receiver.id.clone());
        let (t, j) = (transfer.clone(), job.clone());
        receivers.push(spawn(&format!("recv-{i}"), move || {
            let (t, end) = receive(&mut receiver, &from, &t, &j);
            (t, end, receiver)
        })?);
        let (j, gate) = (job.clone(), gate.clone());
        senders.push(spawn(&format!("send-{i}"), move || {
            if !gate.pass() {
                return (Err(Fault::Connection("called off".into())), sender);
            }
            let sent = send(&mut sender, &to, &transfer, &j);
            if let Err(f) = &sent {
                give_up(&sender, &transfer, &to, f);
            }
            (sent, sender)
        })?);
    }
    Ok((senders, receivers))
}

/// A transfer client: its socket to write on, its frames, its id.
struct Peer {
    out: TcpStream,
    frames: Frames,
    id: String,
}

impl Peer {
    /// Says DISCONNECT and closes.
    fn leave(self) {
        let _ = (&self.out).write_all(&ClientPacket::Disconnect.encode());
        let _ = self.out.shutdown(std::net::Shutdown::Both);
    }
}

/// Connects from `from`, joins as a HubChat client of the version that
/// sends files, and waits for the roster that lists `name`.
fn join(addr: SocketAddr, from: Source, name: &str, job: &Job) -> Result<Peer, String> {
    let out = connect_from(from, addr)
        .map_err(|e| format!("cannot connect from {}: {e}", from.address()))?;
    let frames = out
        .try_clone()
        .and_then(|clone| {
            out.set_read_timeout(Some(job.patience))?;
            out.set_write_timeout(Some(job.patience))?;
            Ok(clone)
        })
        .map_err(|e| format!("cannot set the socket up: {e}"))?;
    let mut frames = Frames {
        from: frames,
        body: Vec::new(),
    };
    (&out)
        .write_all(&attack::info(name, "green", true).encode())
        .map_err(|e| format!("cannot send INFO: {e}"))?;
    let id = loop {
        let body = frames
            .next()
            .map_err(|e| format!("no roster: {}", silence(&e, job.patience)))?;
        match wire::decode(body) {
            Ok(Seen::Roster(entries)) => {
                if let Some((id, _)) = entries.iter().rev().find(|(_, n)| n == name) {
                    break id.to_string();
                }
            }
            Ok(Seen::Closed(why)) => return Err(format!("refused: {why}")),
            _ => {}
        }
    };
    Ok(Peer { out, frames, id })
}

/// Reads whole frames straight from a socket into one buffer kept for the
/// connection: a chunk is read once, into the place where it is checked.
struct Frames {
    from: TcpStream,
    body: Vec<u8>,
}

impl Frames {
    fn next(&mut self) -> io::Result<&[u8]> {
        let mut header = [0u8; HEADER_LEN];
        self.from.read_exact(&mut header)?;
        let len = frame::parse_header(&header, MAX_IN)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.body.resize(len, 0);
        self.from.read_exact(&mut self.body)?;
        Ok(&self.body)
    }
}

/// A frame from the server as a receiver reads it: a chunk's bytes
/// borrowed with its head (decoding it as a packet would copy every chunk
/// once more), anything else decoded whole.
enum Incoming<'a> {
    Chunk {
        transfer: Cow<'a, str>,
        offset: u64,
        bytes: &'a [u8],
    },
    Packet(ServerPacket),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    flag: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkHead<'a> {
    #[serde(borrow)]
    transfer: Cow<'a, str>,
    offset: u64,
}

fn incoming(body: &[u8]) -> Result<Incoming<'_>, Fault> {
    let malformed =
        |e: String| Fault::Connection(format!("the server sent a malformed packet: {e}"));
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Envelope>();
    if let Some(Ok(env)) = stream.next() {
        if env.flag == FILE_DATA {
            let data = env
                .data
                .ok_or_else(|| malformed("FILE DATA without data".into()))?;
            let head: ChunkHead =
                serde_json::from_str(data.get()).map_err(|e| malformed(e.to_string()))?;
            return Ok(Incoming::Chunk {
                transfer: head.transfer,
                offset: head.offset,
                bytes: &body[stream.byte_offset()..],
            });
        }
    }
    ServerPacket::decode(body)
        .map(Incoming::Packet)
        .map_err(|e| malformed(e.to_string()))
}

fn file(transfer: &str, to: &str, what: FileMsg) -> ClientPacket {
    ClientPacket::File(FilePacket {
        transfer: transfer.into(),
        peer: Some(to.into()),
        what,
    })
}

fn put(mut out: &TcpStream, packet: &ClientPacket) -> Result<(), Fault> {
    out.write_all(&packet.encode())
        .map_err(|e| Fault::Connection(format!("cannot send: {e}")))
}

fn cancelled(reason: CancelReason, message: Option<String>) -> Fault {
    Fault::Cancelled(message.unwrap_or_else(|| format!("{reason:?}").to_lowercase()))
}

/// The head of a FILE DATA frame for `len` bytes at `offset`, made by the
/// packet code, its header counting the bytes that are to follow it.
fn chunk_head(transfer: &str, to: &str, offset: u64, len: usize) -> Vec<u8> {
    let data = FileMsg::Data {
        offset,
        bytes: Vec::new(),
    };
    let mut head = file(transfer, to, data).encode();
    let mut header = [0u8; HEADER_LEN];
    frame::write_header(&mut header, head.len() - HEADER_LEN + len);
    head[..HEADER_LEN].copy_from_slice(&header);
    head
}

/// Writes one FILE DATA frame: its head, then the chunk straight from the
/// file's buffer, in as few system calls as the socket takes them.
fn write_chunk(
    mut out: &TcpStream,
    transfer: &str,
    to: &str,
    offset: u64,
    bytes: &[u8],
) -> io::Result<()> {
    let head = chunk_head(transfer, to, offset, bytes.len());
    let mut parts = [IoSlice::new(&head), IoSlice::new(bytes)];
    let mut parts = &mut parts[..];
    while !parts.is_empty() {
        match out.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends one file to `to`: the offer, then, once accepted, its chunks as
/// fast as the receiver's window allows, then FILE DONE. Ok once FILE SAVED
/// came back.
fn send(peer: &mut Peer, to: &str, transfer: &str, job: &Job) -> Result<(), Fault> {
    let offer = Offer {
        name: format!("{transfer}.bin"),
        size: job.size,
        thumbnail: None,
        room: false,
    };
    put(&peer.out, &file(transfer, to, FileMsg::Offer(offer)))?;
    let window = loop {
        if let FileMsg::Accept { window } = next_answer(&mut peer.frames, transfer, job)? {
            break window;
        }
    };
    let (mut sent, mut acked) = (0u64, 0u64);
    while sent < job.size {
        let len = (job.size - sent).min(CHUNK as u64).min(window.max(1));
        if sent + len - acked > window {
            if let FileMsg::Ack { received } = next_answer(&mut peer.frames, transfer, job)? {
                acked = acked.max(received);
            }
            continue;
        }
        write_chunk(
            &peer.out,
            transfer,
            to,
            sent,
            job.content.at(sent, len as usize),
        )
        .map_err(|e| Fault::Connection(format!("cannot send a chunk: {e}")))?;
        sent += len;
    }
    let done = FileMsg::Done { sha256: job.sha256 };
    put(&peer.out, &file(transfer, to, done))?;
    loop {
        if let FileMsg::Saved = next_answer(&mut peer.frames, transfer, job)? {
            return Ok(());
        }
    }
}

/// The next FILE packet about `transfer`, others skipped; a cancel ends
/// the transfer.
fn next_answer(frames: &mut Frames, transfer: &str, job: &Job) -> Result<FileMsg, Fault> {
    loop {
        let body = frames.next().map_err(|e| {
            Fault::Connection(format!(
                "waiting for the receiver: {}",
                silence(&e, job.patience)
            ))
        })?;
        if let Incoming::Packet(ServerPacket::File(p)) = incoming(body)? {
            if p.transfer == transfer {
                return match p.what {
                    FileMsg::Cancel { reason, message } => Err(cancelled(reason, message)),
                    what => Ok(what),
                };
            }
        }
    }
}

/// Receives one file from `from`: waits for its offer, accepts it with
/// HubChat's window, takes and checks the chunks, acknowledging as HubChat
/// does, and answers FILE DONE with FILE SAVED once every byte is here and
/// the hash is the file's. Returns the transfer and when its last byte
/// arrived.
fn receive(peer: &mut Peer, from: &str, transfer: &str, job: &Job) -> (Transfer, Option<Instant>) {
    let mut receipt = Receipt::new(&job.content, job.size);
    let fault = take_file(peer, from, transfer, job, &mut receipt).err();
    if let Some(f) = &fault {
        give_up(peer, transfer, from, f);
    }
    let t = Transfer {
        received: receipt.received,
        fault,
        ..Transfer::default()
    };
    (t, receipt.whole_at)
}

/// Tells the other side of a transfer that this side gave up and why, as
/// a HubChat client does, so it stops at once rather than after the
/// patience; not when the other side gave up first.
fn give_up(peer: &Peer, transfer: &str, other: &str, fault: &Fault) {
    if !matches!(fault, Fault::Cancelled(_)) {
        let what = FileMsg::Cancel {
            reason: CancelReason::Failed,
            message: Some(fault.to_string()),
        };
        let _ = put(&peer.out, &file(transfer, other, what));
    }
}

fn take_file(
    peer: &mut Peer,
    from: &str,
    transfer: &str,
    job: &Job,
    receipt: &mut Receipt,
) -> Result<(), Fault> {
    loop {
        let body = peer
            .frames
            .next()
            .map_err(|e| Fault::Connection(format!("no offer: {}", silence(&e, job.patience))))?;
        if let Incoming::Packet(ServerPacket::File(p)) = incoming(body)? {
            if p.transfer == transfer && p.peer.as_deref() == Some(from) {
                match p.what {
                    FileMsg::Offer(o) if o.size == job.size => break,
                    FileMsg::Offer(o) => {
                        return Err(Fault::Connection(format!(
                            "the offer came with {} bytes, not {}",
                            o.size, job.size
                        )))
                    }
                    FileMsg::Cancel { reason, message } => return Err(cancelled(reason, message)),
                    _ => {}
                }
            }
        }
    }
    put(
        &peer.out,
        &file(transfer, from, FileMsg::Accept { window: WINDOW }),
    )?;
    loop {
        let body = match peer.frames.next() {
            Ok(body) => body,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(receipt.short("the connection ended"))
            }
            Err(e) => return Err(receipt.short(silence(&e, job.patience))),
        };
        let ack = match incoming(body)? {
            Incoming::Chunk {
                transfer: t,
                offset,
                bytes,
            } if t == transfer => receipt.chunk(offset, bytes)?,
            Incoming::Packet(ServerPacket::File(p)) if p.transfer == transfer => match p.what {
                FileMsg::Done { sha256 } => {
                    receipt.done(&sha256, &job.sha256)?;
                    return put(&peer.out, &file(transfer, from, FileMsg::Saved));
                }
                FileMsg::Cancel { reason, message } => return Err(cancelled(reason, message)),
                _ => None,
            },
            _ => None,
        };
        if let Some(received) = ack {
            put(&peer.out, &file(transfer, from, FileMsg::Ack { received }))?;
        }
    }
}

/// Two original clients chatting at a steady rate while the files travel,
/// each message stamped (see [`stamp`]) so its one-way latency is known.
struct Chat {
    rate: f64,
    stop: Arc<AtomicBool>,
    writers: Vec<JoinHandle<(u64, TcpStream)>>,
    readers: Vec<JoinHandle<Tally>>,
    delivered: Arc<AtomicU64>,
}

/// How long a chat reader waits before it looks whether the chat is over.
const CHAT_READ_SLICE: Duration = Duration::from_millis(200);

impl Chat {
    fn join(addr: SocketAddr, tag: &str, patience: Duration) -> Result<[Joined; 2], FilesError> {
        let one = |k: u8| {
            let name = format!("{tag}-chat{k}");
            let hello = attack::info(&name, "red", false);
            attack::join(Source::Pair(k), addr, &name, &hello, patience).map_err(|why| {
                FilesError::Join {
                    who: format!("chatting client {k}"),
                    why,
                }
            })
        };
        Ok([one(0)?, one(1)?])
    }

    /// Starts the pair's readers now and its writers at the gate.
    fn start(pair: [Joined; 2], rate: f64, gate: &Arc<Gate>) -> Result<Chat, FilesError> {
        let start = Instant::now();
        let mut chat = Chat {
            rate,
            stop: Arc::new(AtomicBool::new(false)),
            writers: Vec::new(),
            readers: Vec::new(),
            delivered: Arc::new(AtomicU64::new(0)),
        };
        let ids = [pair[0].id.clone(), pair[1].id.clone()];
        for (k, joined) in pair.into_iter().enumerate() {
            let _ = joined
                .reader
                .get_ref()
                .set_read_timeout(Some(CHAT_READ_SLICE));
            let (stop, count) = (chat.stop.clone(), chat.delivered.clone());
            let reader = joined.reader;
            chat.readers.push(spawn(&format!("chat-read-{k}"), move || {
                listen(reader, start, &stop, &count)
            })?);
            let (stop, gate, to) = (chat.stop.clone(), gate.clone(), ids[1 - k].clone());
            let mut out = joined.stream;
            chat.writers
                .push(spawn(&format!("chat-write-{k}"), move || {
                    if !gate.pass() {
                        return (0, out);
                    }
                    let sent = attack::talk(&mut out, k, &to, rate, start, &stop);
                    (sent, out)
                })?);
        }
        Ok(chat)
    }

    /// Stops the chat, waits up to 2 s for what is in flight, and counts.
    fn finish(self) -> ChatFigures {
        self.stop.store(true, Ordering::SeqCst);
        let mut sent = 0;
        let mut streams = Vec::new();
        for w in self.writers {
            if let Ok((n, s)) = w.join() {
                sent += n;
                streams.push(s);
            }
        }
        let grace = Instant::now() + Duration::from_secs(2);
        while self.delivered.load(Ordering::SeqCst) < sent && Instant::now() < grace {
            thread::sleep(Duration::from_millis(2));
        }
        for s in &streams {
            let _ = (&*s).write_all(&ClientPacket::Disconnect.encode());
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let mut tally = Tally::default();
        for r in self.readers {
            if let Ok(t) = r.join() {
                tally.merge(t);
            }
        }
        let mut lat = tally.latencies;
        lat.sort_unstable();
        let ms = |p: f64| stamp::percentile(&lat, p) as f64 / 1e6;
        ChatFigures {
            rate: self.rate,
            sent,
            delivered: tally.delivered,
            lost: sent.saturating_sub(tally.delivered),
            ms: [ms(50.0), ms(99.0), ms(100.0)],
        }
    }
}

/// Counts the stamped messages that arrive until the connection ends, or
/// the chat is over and nothing more comes.
fn listen(
    mut reader: FrameReader<TcpStream>,
    start: Instant,
    stop: &AtomicBool,
    count: &AtomicU64,
) -> Tally {
    let mut tally = Tally::default();
    loop {
        match reader.read_frame() {
            Ok(Some(body)) => match wire::decode(body) {
                Ok(Seen::Message(text)) => {
                    tally.record(&text, stamp::since(start));
                    count.fetch_add(1, Ordering::SeqCst);
                }
                Ok(Seen::Closed(_)) => break,
                _ => {}
            },
            Err(ReadError::Io(e)) if is_timeout(&e) && !stop.load(Ordering::SeqCst) => {}
            Ok(None) | Err(_) => break,
        }
    }
    tally
}

/// Reads the server's resident memory every [`SAMPLE_EVERY`] until
/// finished: the first reading and the highest.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Option<(u64, u64)>>,
}

impl Sampler {
    fn start(pid: u32) -> Result<Sampler, FilesError> {
        let stop = Arc::new(AtomicBool::new(false));
        let over = stop.clone();
        let thread = spawn("rss", move || {
            let mut seen: Option<(u64, u64)> = None;
            loop {
                if let Some((rss, _)) = attack_net::memory_kib(pid) {
                    seen = Some(seen.map_or((rss, rss), |(first, peak)| (first, peak.max(rss))));
                }
                if over.load(Ordering::SeqCst) {
                    return seen;
                }
                thread::sleep(SAMPLE_EVERY);
            }
        })?;
        Ok(Sampler { stop, thread })
    }

    fn finish(self) -> Option<(u64, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().ok().flatten()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The report as a readable table.
pub fn table(o: &FilesOptions, r: &FilesReport) -> String {
    let n = o.transfers;
    let row = |label: &str, value: String| format!("  {label:<23}{value}\n");
    let mut t = format!(
        "hubchat-load files: {n} transfer{} of {} MB{} through {}\n",
        plural(n),
        o.size_mb,
        if n > 1 { " at once" } else { "" },
        o.server
    );
    let speed = |ts: &[Transfer], seconds: f64| {
        format!(
            "{:.0} MB/s ({:.0} MB in {:.2} s)",
            mb_per_s(bytes(ts), seconds),
            bytes(ts) as f64 / MB,
            seconds
        )
    };
    t += &row("through the hub", speed(&r.hub, r.hub_seconds));
    t += &row(
        &format!("bare TCP socket pair{}", plural(n)),
        speed(&r.bare, r.bare_seconds),
    );
    t += &row("ratio", format!("{:.2} (hub / bare)", r.ratio()));
    t += &row(
        "files received",
        format!(
            "{} of {n} whole and in order, every byte checked",
            r.intact()
        ),
    );
    for (what, ts) in [("transfer", &r.hub), ("bare pair", &r.bare)] {
        for (i, tr) in ts.iter().enumerate() {
            for (side, f) in tr.faults() {
                t += &row(&format!("{what} {i}"), format!("FAILED ({side}): {f}"));
            }
        }
    }
    let chat = match &r.chat {
        None => "none (--chat-rate 0)".to_string(),
        Some(c) => {
            let [p50, p99, max] = c.ms;
            format!(
                "p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} of {} messages, {} lost; {} msg/s each of a pair)",
                c.delivered, c.sent, c.lost, c.rate
            )
        }
    };
    t += &row("chat during transfers", chat);
    let rss = match (o.server_pid, r.rss_kib) {
        (None, _) => "not measured (pass --server-pid)".to_string(),
        (Some(_), Some((before, peak))) => format!(
            "{:.1} MB ({:.1} MB before the clients joined)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        (Some(pid), None) if cfg!(target_os = "linux") => {
            format!("n/a (cannot read /proc/{pid}/status)")
        }
        (Some(_), None) => "n/a (Linux only)".to_string(),
    };
    t += &row("server RSS peak", rss);
    let goals: Vec<String> = r
        .goals()
        .iter()
        .map(|(_, what, met)| {
            let verdict = match met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not measured",
            };
            format!("{what} {verdict}")
        })
        .collect();
    t += &row("goals", goals.join("; "));
    t
}

/// The report as one JSON line, for scripts.
pub fn json(o: &FilesOptions, r: &FilesReport) -> String {
    let faults = |ts: &[Transfer]| -> Vec<serde_json::Value> {
        ts.iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.faults().map(move |(side, f)| {
                    serde_json::json!({"transfer": i, "side": side, "fault": f.to_string()})
                })
            })
            .collect()
    };
    let leg = |ts: &[Transfer], seconds: f64| {
        serde_json::json!({
            "bytes": bytes(ts),
            "seconds": seconds,
            "mb_per_s": mb_per_s(bytes(ts), seconds),
            "each_s": ts.iter().map(|t| t.seconds).collect::<Vec<_>>(),
        })
    };
    let goals: serde_json::Map<String, serde_json::Value> = r
        .goals()
        .iter()
        .map(|(key, _, met)| (key.to_string(), serde_json::json!(met)))
        .collect();
    serde_json::json!({
        "command": "files",
        "server": o.server.to_string(),
        "transfers": o.transfers,
        "size_mb": o.size_mb,
        "hub": leg(&r.hub, r.hub_seconds),
        "bare": leg(&r.bare, r.bare_seconds),
        "ratio": r.ratio(),
        "intact": r.intact(),
        "faults": faults(&r.hub),
        "bare_faults": faults(&r.bare),
        "chat": r.chat.as_ref().map(|c| serde_json::json!({
            "rate": c.rate,
            "sent": c.sent,
            "delivered": c.delivered,
            "lost": c.lost,
            "p50_ms": c.ms[0],
            "p99_ms": c.ms[1],
            "max_ms": c.ms[2],
        })),
        "server_rss_before_mb": r.rss_kib.map(|(b, _)| b as f64 / 1024.0),
        "server_rss_peak_mb": r.rss_kib.map(|(_, p)| p as f64 / 1024.0),
        "goals": goals,
        "goals_met": r.goals_met(),
        "clean": r.clean(),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::file_packet::encode_data_from;
    use crate::common::packet::Roster;

    #[test]
    fn a_file_is_its_pattern_from_any_offset_and_its_hash_is_of_those_bytes() {
        let c = Content::new();
        assert_ne!(c.at(0, CHUNK), c.at(CHUNK as u64, CHUNK), "chunks differ");
        let far = 3 * PERIOD as u64 + 17;
        assert_eq!(c.at(far, 100), c.at(17, 100));
        assert!(c.holds(far, c.at(17, CHUNK)));
        assert!(!c.holds(far + 1, c.at(17, 100)), "one byte off");
        assert!(!c.holds(0, &vec![0; PERIOD + 1]), "longer than a period");
        let size = 2 * CHUNK as u64 + 5;
        let mut whole = Vec::new();
        let mut at = 0;
        while at < size {
            let len = (size - at).min(1000) as usize;
            whole.extend_from_slice(c.at(at, len));
            at += len as u64;
        }
        let hash = ring::digest::digest(&ring::digest::SHA256, &whole);
        assert_eq!(c.sha256(size).as_slice(), hash.as_ref());
    }

    #[test]
    fn a_receiver_takes_chunks_in_order_and_acknowledges_as_hubchat_does() {
        let c = Content::new();
        let size = 4 * ACK_EVERY + 10;
        let mut r = Receipt::new(&c, size);
        let mut acks = Vec::new();
        let mut at = 0;
        while at < size {
            let len = (size - at).min(ACK_EVERY / 2) as usize;
            if let Some(n) = r.chunk(at, c.at(at, len)).unwrap() {
                acks.push(n);
            }
            at += len as u64;
        }
        let every = (1..=4).map(|k| k * ACK_EVERY).chain([size]);
        assert_eq!(
            acks,
            every.collect::<Vec<_>>(),
            "each quarter window, then the end"
        );
        assert!(r.whole_at.is_some());
        let hash = c.sha256(size);
        assert_eq!(r.done(&hash, &hash), Ok(()));
        assert_eq!(r.done(&[0; 32], &hash), Err(Fault::WrongHash));
    }

    #[test]
    fn a_gap_a_repeat_a_wrong_byte_and_a_short_file_are_each_seen() {
        let c = Content::new();
        let mut r = Receipt::new(&c, 300);
        r.chunk(0, c.at(0, 100)).unwrap();
        assert_eq!(
            r.chunk(150, c.at(150, 50)),
            Err(Fault::Gap {
                expected: 100,
                got: 150
            })
        );
        assert_eq!(
            r.chunk(0, c.at(0, 100)),
            Err(Fault::Gap {
                expected: 100,
                got: 0
            }),
            "a repeat"
        );
        assert_eq!(
            r.chunk(100, c.at(101, 50)),
            Err(Fault::Damaged { offset: 100 }),
            "bytes of another offset"
        );
        assert_eq!(
            r.chunk(100, c.at(100, 201)),
            Err(Fault::TooLong { size: 300 })
        );
        let hash = c.sha256(300);
        let short = r.done(&hash, &hash).unwrap_err();
        assert!(matches!(
            short,
            Fault::Short {
                received: 100,
                size: 300,
                ..
            }
        ));
        assert_eq!(
            short.to_string(),
            "short: only 100 of 300 bytes arrived (the sender said it was done)"
        );
        assert!(r.whole_at.is_none());
    }

    #[test]
    fn a_chunk_goes_out_as_a_packet_with_its_bytes_after_the_head() {
        let bytes = Content::new().at(5, 1000).to_vec();
        let mut frame = chunk_head("load-3", "client7", 5, bytes.len());
        frame.extend_from_slice(&bytes);
        assert_eq!(
            ClientPacket::decode(&frame[HEADER_LEN..]),
            Ok(file(
                "load-3",
                "client7",
                FileMsg::Data { offset: 5, bytes }
            ))
        );
    }

    #[test]
    fn a_relayed_chunk_is_read_in_place_and_anything_else_is_decoded() {
        let relayed = encode_data_from("load-0", "client2", 4096, b"\x00raw{}");
        match incoming(&relayed[HEADER_LEN..]) {
            Ok(Incoming::Chunk {
                transfer,
                offset,
                bytes,
            }) => assert_eq!(
                (&*transfer, offset, bytes),
                ("load-0", 4096, &b"\x00raw{}"[..])
            ),
            _ => panic!("not a chunk"),
        }
        let roster = ServerPacket::AllClients(Roster(Vec::new())).encode();
        assert!(matches!(
            incoming(&roster[HEADER_LEN..]),
            Ok(Incoming::Packet(ServerPacket::AllClients(_)))
        ));
        let bad = br#"{"flag": "FILE DATA", "data": {"transfer": "t"}}"#;
        assert!(matches!(incoming(bad), Err(Fault::Connection(_))));
        assert!(incoming(b"not json").is_err());
    }

    fn report() -> FilesReport {
        let whole = |seconds| Transfer {
            received: 64 << 20,
            seconds: Some(seconds),
            ..Transfer::default()
        };
        FilesReport {
            hub: vec![whole(0.5), whole(1.0)],
            hub_seconds: 1.0,
            bare: vec![whole(0.2), whole(0.25)],
            bare_seconds: 0.25,
            chat: Some(ChatFigures {
                rate: 15.0,
                sent: 30,
                delivered: 30,
                lost: 0,
                ms: [0.2, 0.9, 1.1],
            }),
            rss_kib: Some((10 << 10, 20 << 10)),
        }
    }

    #[test]
    fn the_report_gives_both_speeds_their_ratio_and_the_goals() {
        let o = FilesOptions {
            size_mb: 64,
            transfers: 2,
            server_pid: Some(7),
            ..FilesOptions::default()
        };
        let r = report();
        assert_eq!((r.hub_mb_per_s(), r.bare_mb_per_s()), (128.0, 512.0));
        assert_eq!(r.ratio(), 0.25);
        assert!(r.clean() && !r.goals_met());
        let t = table(&o, &r);
        for line in [
            "hubchat-load files: 2 transfers of 64 MB at once through 127.0.0.1:5050",
            "through the hub        128 MB/s (128 MB in 1.00 s)",
            "bare TCP socket pairs  512 MB/s (128 MB in 0.25 s)",
            "ratio                  0.25 (hub / bare)",
            "files received         2 of 2 whole and in order",
            "chat during transfers  p50 0.20 ms, p99 0.90 ms, max 1.10 ms (30 of 30 messages",
            "server RSS peak        20.0 MB (10.0 MB before the clients joined)",
            "ratio >= 0.50 NOT met; chat p99 < 5 ms met; server RSS < 64 MB met",
        ] {
            assert!(t.contains(line), "{line}\n{t}");
        }
        let j: serde_json::Value = serde_json::from_str(&json(&o, &r)).unwrap();
        assert_eq!(j["ratio"], 0.25);
        assert_eq!(j["goals"]["ratio"], false);
        assert_eq!(j["goals"]["server_rss"], true);
        assert_eq!(j["chat"]["p99_ms"], 0.9);
        assert_eq!(j["clean"], true);
    }

    #[test]
    fn a_failed_file_is_named_with_each_sides_fault_and_the_run_is_not_clean() {
        let mut r = report();
        r.hub[1].seconds = None;
        r.hub[1].fault = Some(Fault::Gap {
            expected: 10,
            got: 20,
        });
        r.hub[1].sender_fault = Some(Fault::Cancelled("it broke".into()));
        r.chat = None;
        r.rss_kib = None;
        assert!(!r.clean());
        let o = FilesOptions {
            transfers: 2,
            ..FilesOptions::default()
        };
        let t = table(&o, &r);
        assert!(t.contains("1 of 2 whole"), "{t}");
        assert!(
            t.contains("transfer 1             FAILED (receiver): a gap: a chunk began at byte 20 where byte 10 was next"),
            "{t}"
        );
        assert!(t.contains("FAILED (sender): given up: it broke"), "{t}");
        assert!(t.contains("none (--chat-rate 0)"), "{t}");
        assert!(t.contains("not measured (pass --server-pid)"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&json(&o, &r)).unwrap();
        assert_eq!(j["faults"].as_array().map(Vec::len), Some(2));
        assert_eq!(j["goals"]["chat_p99"], serde_json::Value::Null);
    }
}
